// The JSON-LD document loader of the tests: every context from the copies accolade bundles
// (src/openbadges/contexts, see its SOURCES.md), never fetched.
import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {dirname, join} from 'node:path';

const contexts = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'openbadges', 'contexts');
const bundled = {
  'https://www.w3.org/2018/credentials/v1': 'credentials-v1.json',
  'https://www.w3.org/ns/credentials/v2': 'credentials-v2.json',
  'https://w3id.org/security/data-integrity/v2': 'data-integrity-v2.json',
  'https://www.w3.org/ns/cid/v1': 'cid-v1.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json': 'ob-v3p0-context-3.0.2.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json': 'ob-v3p0-context-3.0.3.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/extensions.json': 'ob-v3p0-extensions.json',
  'https://w3id.org/openbadges/v2': 'openbadges-v2.json',
};

export const documentLoader = async (url) => {
  const file = bundled[url];
  if (!file) {
    throw new Error(`context ${url} is not bundled (contexts are never fetched)`);
  }
  const document = JSON.parse(readFileSync(join(contexts, file), 'utf8'));
  return {contextUrl: null, documentUrl: url, document};
};
