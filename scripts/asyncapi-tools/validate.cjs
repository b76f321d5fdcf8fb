'use strict';
// Parses and validates an AsyncAPI document with the official parser (@asyncapi/parser: the
// AsyncAPI schema, references and its Spectral rules), then checks every message example
// against its payload schema as the parser resolved it (the parser's AsyncAPI 3 rules do not).
// Prints every diagnostic; exits 1 when the document does not parse, has any error or warning,
// or an example does not match its payload.
// Usage: node validate.cjs <install dir of scripts/asyncapi-tools/parser> <file>
const path = require('node:path');
const { createRequire } = require('node:module');

const [installDir, file] = process.argv.slice(2);
const load = createRequire(path.resolve(installDir, 'package.json'));
const { Parser, fromFile } = load('@asyncapi/parser');
const Ajv = load('ajv');
const addFormats = load('ajv-formats');

const SEVERITY = ['error', 'warning', 'information', 'hint'];

// Integer formats schemars writes (`format: uint32`), checked rather than ignored.
const INTEGER_FORMATS = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

/** Every example of every message that does not match the message's payload schema. */
function exampleErrors(document) {
  // Not strict: the resolved schemas carry the parser's `x-parser-*` annotations.
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const [name, [min, max]] of Object.entries(INTEGER_FORMATS)) {
    ajv.addFormat(name, { type: 'number', validate: (n) => Number.isInteger(n) && n >= min && n <= max });
  }
  const errors = [];
  let checked = 0;
  for (const message of document.messages().all()) {
    const payload = message.payload();
    if (!payload) continue;
    const validate = ajv.compile(payload.json());
    message.examples().all().forEach((example, index) => {
      checked += 1;
      if (!validate(example.payload())) {
        const name = example.name() || `#${index}`;
        for (const e of validate.errors) {
          errors.push(`message ${message.id()}, example ${name}: ${e.instancePath || '/'} ${e.message}`);
        }
      }
    });
  }
  return { errors, checked };
}

async function main() {
  const { document, diagnostics } = await fromFile(new Parser(), file).parse();
  let failing = 0;
  for (const d of diagnostics) {
    const at = d.range ? `${file}:${d.range.start.line + 1}:${d.range.start.character + 1}` : file;
    const where = d.path && d.path.length ? ` (at ${d.path.join('.')})` : '';
    console.log(`${at}: ${SEVERITY[d.severity] || d.severity} ${d.code}: ${d.message}${where}`);
    if (d.severity <= 1) failing += 1;
  }
  if (!document || failing > 0) {
    console.error(`${file}: not valid: ${failing} error(s) or warning(s)`);
    return 1;
  }
  const examples = exampleErrors(document);
  for (const e of examples.errors) console.log(`${file}: error example-payload: ${e}`);
  if (examples.errors.length > 0) {
    console.error(`${file}: not valid: ${examples.errors.length} example error(s)`);
    return 1;
  }
  const count = (collection) => collection.all().length;
  console.log(
    `${file}: valid AsyncAPI ${document.version()}: ${count(document.channels())} channels, ` +
      `${count(document.operations())} operations, ${count(document.messages())} messages, ` +
      `${count(document.schemas())} schemas, ${examples.checked} examples match their payloads`,
  );
  return 0;
}

main().then(
  (status) => process.exit(status),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
