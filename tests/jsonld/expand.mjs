// Expands JSON-LD documents with jsonld.js in safe mode, as data-integrity verifiers run it,
// resolving contexts only from the copies accolade bundles (loader.mjs; never fetched).
// Usage: node expand.mjs FILE...   Prints "ok FILE" or "error FILE: why" per file; exits 1 if
// any document fails.
import jsonld from 'jsonld';
import {readFileSync} from 'node:fs';
import {documentLoader} from './loader.mjs';

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
