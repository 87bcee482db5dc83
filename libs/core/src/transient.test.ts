import { DomainError } from "./errors";
import { isTransientInfraError } from "./transient";

describe("isTransientInfraError", () => {
  it("recognises lost PostgreSQL and Redis connections in the shapes the clients throw", () => {
    // Prisma over adapter-pg, as logged when the connection to PostgreSQL was cut.
    const prisma = Object.assign(new Error("Invalid `db.tenant.findUnique()` invocation"), {
      name: "PrismaClientKnownRequestError",
      code: "P1017",
      meta: { driverAdapterError: { name: "DriverAdapterError", cause: { kind: "ConnectionClosed" } } },
    });
    expect(isTransientInfraError(prisma)).toBe(true);
    const adapterOnly = Object.assign(new Error("x"), {
      code: "P2010",
      meta: { driverAdapterError: { cause: { kind: "DatabaseNotReachable" } } },
    });
    expect(isTransientInfraError(adapterOnly)).toBe(true);
    const ioredis = Object.assign(new Error("Reached the max retries per request limit"), {
      name: "MaxRetriesPerRequestError",
    });
    expect(isTransientInfraError(ioredis)).toBe(true);
    expect(isTransientInfraError(new Error("Connection is closed."))).toBe(true);
    // libs/redis' request-path deadline, and ioredis' commandTimeout
    const deadline = Object.assign(new Error("Redis did not answer evalsha within 1000 ms"), {
      name: "RedisCommandTimeoutError",
    });
    expect(isTransientInfraError(deadline)).toBe(true);
    expect(isTransientInfraError(new Error("Command timed out"))).toBe(true);
    const wrapped = new Error("enqueue failed", { cause: Object.assign(new Error("read"), { code: "ECONNRESET" }) });
    expect(isTransientInfraError(wrapped)).toBe(true);
    // shapes the API's former second classifier (createCompletion's isUnavailable) knew
    expect(isTransientInfraError(new Error("Can't reach database server at `127.0.0.1:5432`"))).toBe(true);
    expect(isTransientInfraError(new Error("write EPIPE"))).toBe(true);
    expect(isTransientInfraError(new Error("read ETIMEDOUT"))).toBe(true);
    expect(isTransientInfraError(Object.assign(new Error("query failed"), { cause: "socket ECONNRESET" }))).toBe(true);
  });

  it("does not mistake bugs or constraint violations for outages", () => {
    expect(isTransientInfraError(new TypeError("cannot read properties of undefined"))).toBe(false);
    expect(isTransientInfraError(Object.assign(new Error("Unique constraint failed"), { code: "P2002" }))).toBe(false);
    expect(isTransientInfraError(undefined)).toBe(false);
    expect(isTransientInfraError("Connection is closed")).toBe(false);
    // a decided answer stays one, even when an outage caused it
    const decided = new DomainError("UNAVAILABLE", "retry later", { cause: new Error("Connection is closed.") });
    expect(isTransientInfraError(decided)).toBe(false);
  });
});
