import { Prisma } from "@lite/db";
import { createLogger, REDACTED } from "./logger";

function capture(name: string, base?: Record<string, unknown>) {
  const lines: string[] = [];
  const log = createLogger({ name, level: "info", base, destination: { write: (s: string) => void lines.push(s) } });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("createLogger", () => {
  it.each(["api", "worker"])(
    "redacts keys, secrets, authorization headers, prompts and completion text (%s)",
    (name) => {
      const { log, lines, parsed } = capture(name);
      log.info(
        {
          authorization: "Bearer lite_top",
          headers: { authorization: "Bearer lite_header", cookie: "c=lite_cookie" },
          req: { headers: { authorization: "Bearer lite_req" } },
          connectionParams: { Authorization: "Bearer lite_ws" },
          secret: "lite_secret",
          key: { secret: "lite_nested_secret" },
          ADMIN_API_KEY: "lite_admin",
          env: { ADMIN_API_KEY: "lite_admin_env" },
          prompt: "PROMPT ONE",
          input: { prompt: "PROMPT TWO" },
          text: "COMPLETION TEXT",
          completion: { text: "COMPLETION TEXT TWO" },
          variables: { input: { prompt: "PROMPT THREE" } },
          completionId: "cmp_1",
        },
        "request",
      );
      const text = lines.join("");
      expect(text).not.toMatch(/lite_|PROMPT|COMPLETION TEXT/);
      const [line] = parsed();
      expect(line.prompt).toBe(REDACTED);
      expect((line.input as Record<string, unknown>).prompt).toBe(REDACTED);
      expect((line.headers as Record<string, unknown>).authorization).toBe(REDACTED);
      // ids and the shape of the line stay readable
      expect(line.completionId).toBe("cmp_1");
      expect(line.service).toBe(name);
      expect(line.msg).toBe("request");
    },
  );

  it("logs a Prisma error by type, code and first line only (its message echoes the query's arguments)", () => {
    const { log, lines } = capture("api");
    const prismaError = new Prisma.PrismaClientKnownRequestError(
      'Invalid `prisma.completion.create()` invocation:\n{ data: { prompt: "SECRET PROMPT" } }',
      { code: "P2002", clientVersion: "6" },
    );
    log.error({ err: prismaError }, "failed");
    const text = lines.join("");
    expect(text).toContain("P2002");
    expect(text).toContain("PrismaClientKnownRequestError");
    expect(text).not.toContain("SECRET PROMPT");
  });

  it("keeps ordinary errors whole and adds the base fields", () => {
    const { log, parsed } = capture("worker", { workerId: "w1" });
    log.warn({ err: new Error("boom") }, "retrying");
    const [line] = parsed();
    expect(line.workerId).toBe("w1");
    expect((line.err as Record<string, unknown>).message).toBe("boom");
    expect(typeof line.time).toBe("string");
  });
});
