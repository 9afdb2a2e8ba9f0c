// The graphql-http server audit (GraphQL over HTTP) of a running cdlm, run by
// tests/test_http_audit.py and bench/graphql_http_audit.py: prints every result, one a line,
// then the counts as JSON, and exits 1 when any result is a warning or an error.
//
//   node audit.mjs http://127.0.0.1:8000/graphql
import { auditServer } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: node audit.mjs <GraphQL endpoint URL>");
  process.exit(2);
}
const results = await auditServer({ url });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  const reason = result.status === "ok" ? "" : `: ${result.reason}`;
  console.log(`${result.status.padEnd(6)} ${result.id} ${result.name}${reason}`);
}
console.log(JSON.stringify(counts));
process.exit(counts.warn + counts.error > 0 ? 1 : 0);
