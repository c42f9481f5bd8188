// Validate Strimzi resources (a JSON array on stdin) with the ajv validators that
// @kubernetes-models/strimzi-kafka-operator compiled from Strimzi's CRD schemas.
// Prints a JSON array: one {index, kind, name, errors} per document (errors empty when valid).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);
const pkg = dirname(require.resolve("@kubernetes-models/strimzi-kafka-operator/package.json"));
const docs = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const [index, doc] of docs.entries()) {
  const [group, version] = String(doc.apiVersion).split("/");
  const prefix = group === "kafka.strimzi.io" ? "KafkaStrimziIo" : "CoreStrimziIo";
  const module = `${prefix}${version[0].toUpperCase()}${version.slice(1)}${doc.kind}.js`;
  let errors;
  try {
    const { validate } = await import(pathToFileURL(join(pkg, "_schemas", module)).href);
    errors = validate(doc) ? [] : validate.errors;
  } catch (e) {
    errors = [{ message: `no schema for ${doc.apiVersion} ${doc.kind}: ${e.message}` }];
  }
  out.push({ index, kind: doc.kind, name: doc.metadata?.name, errors });
}
process.stdout.write(JSON.stringify(out));
