/** `npm run schema:print`: the served SDL, with no database or Redis. */
import "reflect-metadata";
import { lexicographicSortSchema, printSchema } from "graphql";
import { buildApiSchema } from "./schema";

export async function printApiSchema(): Promise<string> {
  return `${printSchema(lexicographicSortSchema(await buildApiSchema()))}\n`;
}

if (require.main === module) {
  printApiSchema().then(
    (sdl) => process.stdout.write(sdl),
    (e) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
