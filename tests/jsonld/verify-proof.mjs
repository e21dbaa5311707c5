// Verifies the Data Integrity proofs (eddsa-rdfc-2022) of Open Badges 3.0 credentials, apart
// from the code that made them: jsonld.js canonicalizes (RDFC-1.0, safe mode, contexts from
// loader.mjs), Node's crypto checks the Ed25519 signature, and the key is looked up in the
// issuer profile the export publishes (a Multikey it lists as an assertionMethod).
// Usage: node verify-proof.mjs ISSUER_PROFILE CREDENTIAL...
// Prints "ok FILE" or "error FILE: why" per credential; exits 1 if any fails.
import jsonld from 'jsonld';
import {createHash, createPublicKey, verify} from 'node:crypto';
import {readFileSync} from 'node:fs';
import {documentLoader} from './loader.mjs';

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

// Multibase base58btc ('z' prefix) to bytes.
function base58btc(text) {
  if (!text.startsWith('z')) throw new Error(`not base58btc multibase: ${text}`);
  let value = 0n;
  for (const c of text.slice(1)) {
    const digit = ALPHABET.indexOf(c);
    if (digit < 0) throw new Error(`not base58: ${text}`);
    value = value * 58n + BigInt(digit);
  }
  const bytes = [];
  while (value > 0n) {
    bytes.unshift(Number(value % 256n));
    value /= 256n;
  }
  for (const c of text.slice(1)) {
    if (c !== '1') break;
    bytes.unshift(0);
  }
  return Buffer.from(bytes);
}

const canonize = (document) =>
  jsonld.canonize(document, {algorithm: 'RDFC-1.0', format: 'application/n-quads', safe: true, documentLoader});
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest();

const [profileFile, ...files] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(profileFile, 'utf8'));

let failed = false;
for (const file of files) {
  try {
    const credential = JSON.parse(readFileSync(file, 'utf8'));
    const {proof: proofs, ...unsecured} = credential;
    if (!proofs) throw new Error('no proof');
    for (const proof of Array.isArray(proofs) ? proofs : [proofs]) {
      if (proof.type !== 'DataIntegrityProof' || proof.cryptosuite !== 'eddsa-rdfc-2022') {
        throw new Error(`not an eddsa-rdfc-2022 DataIntegrityProof: ${JSON.stringify(proof)}`);
      }
      if (proof.proofPurpose !== 'assertionMethod') throw new Error(`purpose ${proof.proofPurpose}`);
      const method = (profile.verificationMethod || []).find((m) => m.id === proof.verificationMethod);
      if (!method) throw new Error(`the issuer profile has no verification method ${proof.verificationMethod}`);
      if (!(profile.assertionMethod || []).includes(method.id)) throw new Error('the key is not an assertionMethod');
      if (method.type !== 'Multikey' || method.controller !== profile.id) throw new Error('not the issuer\'s Multikey');
      if (credential.issuer.id !== profile.id) throw new Error('issued by someone else');
      const multikey = base58btc(method.publicKeyMultibase);
      if (multikey[0] !== 0xed || multikey[1] !== 0x01 || multikey.length !== 34) {
        throw new Error('not an Ed25519 Multikey');
      }
      const key = createPublicKey({
        key: {kty: 'OKP', crv: 'Ed25519', x: multikey.subarray(2).toString('base64url')},
        format: 'jwk',
      });
      // The proof options are the proof without its value, with the credential's contexts.
      const {proofValue, ...options} = proof;
      options['@context'] = credential['@context'];
      const data = Buffer.concat([sha256(await canonize(options)), sha256(await canonize(unsecured))]);
      if (!verify(null, data, key, base58btc(proofValue))) throw new Error('the signature does not verify');
    }
    console.log(`ok ${file}`);
  } catch (error) {
    failed = true;
    console.log(`error ${file}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
