// Parses PromQL expressions (one JSON array of strings on stdin) with Prometheus's own
// grammar (@prometheus-io/lezer-promql, the parser of Prometheus's web UI) and prints each
// one that has a syntax error, with the position; exits 1 if any.
// usage: node check_promql.mjs <path to @prometheus-io/lezer-promql>
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const { parser } = await import(pathToFileURL(`${process.argv[2]}/dist/index.es.js`).href);
const exprs = JSON.parse(readFileSync(0, "utf8"));
let errors = 0;
for (const expr of exprs) {
  const cursor = parser.parse(expr).cursor();
  do {
    if (cursor.type.isError) {
      console.log(`syntax error at ${cursor.from}: ${expr.slice(cursor.from, cursor.from + 30)} in ${expr}`);
      errors++;
      break;
    }
  } while (cursor.next());
}
console.log(`${exprs.length - errors} of ${exprs.length} parse`);
process.exit(errors ? 1 : 0);
