// Validates KEDA custom resources (JSON documents, one array on stdin) against the schemas
// of the npm package @kubernetes-models/keda (generated from KEDA's CRDs). Prints one line
// per error and exits 1 if any; usage: node validate_keda.mjs <path to @kubernetes-models/keda>
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const root = process.argv[2];
const models = await import(pathToFileURL(`${root}/keda.sh/v1alpha1/index.js`).href);
const docs = JSON.parse(readFileSync(0, "utf8"));
let errors = 0;
for (const doc of docs) {
  const Model = models[doc.kind];
  if (!Model) {
    console.log(`${doc.kind}/${doc.metadata?.name}: not a keda.sh/v1alpha1 kind`);
    errors++;
    continue;
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    console.log(`${doc.kind}/${doc.metadata?.name}: ${e.message}`);
    errors++;
  }
}
console.log(`${docs.length - errors} of ${docs.length} valid`);
process.exit(errors ? 1 : 0);
