// Expands JSON-LD documents with jsonld.js in safe mode, as data-integrity verifiers run it,
// resolving contexts only from the bundled copies in tests/fixtures/jsonld (never fetched).
// Usage: node expand.mjs FILE...   Prints "ok FILE" or "error FILE: why" per file; exits 1 if
// any document fails.
import jsonld from 'jsonld';
import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {dirname, join} from 'node:path';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'jsonld');
const bundled = {
  'https://www.w3.org/2018/credentials/v1': 'credentials-v1.json',
  'https://www.w3.org/ns/credentials/v2': 'credentials-v2.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json': 'ob-v3p0-context-3.0.2.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json': 'ob-v3p0-context-3.0.3.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/extensions.json': 'ob-v3p0-extensions.json',
  'https://w3id.org/openbadges/v2': 'openbadges-v2.json',
};

const documentLoader = async (url) => {
  const file = bundled[url];
  if (!file) {
    throw new Error(`context ${url} is not bundled (contexts are never fetched)`);
  }
  const document = JSON.parse(readFileSync(join(fixtures, file), 'utf8'));
  return {contextUrl: null, documentUrl: url, document};
};

let failed = false;
for (const file of process.argv.slice(2)) {
  try {
    const document = JSON.parse(readFileSync(file, 'utf8'));
    const expanded = await jsonld.expand(document, {safe: true, documentLoader});
    if (expanded.length === 0) {
      throw new Error('expands to nothing');
    }
    console.log(`ok ${file}`);
  } catch (error) {
    failed = true;
    console.log(`error ${file}: ${error.message}${error.details ? ' ' + JSON.stringify(error.details) : ''}`);
  }
}
process.exit(failed ? 1 : 0);
