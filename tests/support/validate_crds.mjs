// Validates custom resources (JSON documents, one array on stdin) against the schemas of a
// @kubernetes-models package generated from the CRDs (@kubernetes-models/keda,
// @kubernetes-models/prometheus-operator). Prints one line per error and exits 1 if any.
// usage: node validate_crds.mjs <path to the package> <apiVersion, e.g. keda.sh/v1alpha1>
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const [root, apiVersion] = process.argv.slice(2);
const models = await import(pathToFileURL(`${root}/${apiVersion}/index.js`).href);
const docs = JSON.parse(readFileSync(0, "utf8"));
let errors = 0;
for (const doc of docs) {
  const Model = models[doc.kind];
  if (!Model || doc.apiVersion !== apiVersion) {
    console.log(`${doc.kind}/${doc.metadata?.name}: not a ${apiVersion} kind`);
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
