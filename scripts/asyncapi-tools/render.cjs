'use strict';
// Renders an AsyncAPI document to static HTML docs with AsyncAPI's generator and its HTML
// template, both from the pinned install of scripts/asyncapi-tools/html.
// Usage: node render.cjs <install dir of scripts/asyncapi-tools/html> <file> <output dir>
const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

const [installDir, file, output] = process.argv.slice(2);
const load = createRequire(path.resolve(installDir, 'package.json'));
const Generator = load('@asyncapi/generator');
// The installed template, by path: the generator then uses it as it is, without installing.
const template = path.dirname(load.resolve('@asyncapi/html-template/package.json'));

async function main() {
  fs.mkdirSync(output, { recursive: true });
  const generator = new Generator(template, path.resolve(output), {
    forceWrite: true,
    // One self-contained index.html (styles and scripts inlined), easy to publish or attach.
    templateParams: { singleFile: 'true', sidebarOrganization: 'byTags' },
  });
  await generator.generateFromFile(path.resolve(file));
  console.log(`${file}: rendered to ${path.join(output, 'index.html')}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
