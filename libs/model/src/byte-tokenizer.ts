/**
 * Byte-level tokeniser: ids 0..255 are bytes, then BOS and EOS. Prompts may hold any UTF-8;
 * generation samples only printable ASCII, newline and EOS, so generated text is always
 * valid UTF-8 token by token (a stream consumer never sees half a character).
 */
export interface Tokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  tokenText(id: number): string;
  readonly bos: number;
  readonly eos: number;
}

export function createByteTokenizer(bos: number, eos: number): Tokenizer {
  return {
    bos,
    eos,
    encode: (text) => Array.from(Buffer.from(text, "utf8")),
    decode: (ids) => Buffer.from(ids.filter((id) => id >= 0 && id < 256)).toString("utf8"),
    tokenText: (id) =>
      id >= 0 && id < 128 ? String.fromCharCode(id) : id < 256 ? Buffer.from([id]).toString("utf8") : "",
  };
}

/** Token ids generation may emit: newline, printable ASCII (32..126), EOS; ascending. */
export function samplableTokens(eos: number): number[] {
  const ids = [10];
  for (let c = 32; c <= 126; c++) ids.push(c);
  ids.push(eos);
  return ids;
}
