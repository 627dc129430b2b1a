#!/usr/bin/env node
// Writes the validation sample shipped with the default models: PER_DOMAIN
// documents of each label, spread evenly over the validation split, each cut
// to its first MAX_CHARS characters at a word boundary. Small enough for a
// CPU to evaluate the default models on it in the test suite, large enough
// for perplexity intervals of a few percent.
// Usage: scripts/validation-sample.js VALIDATION.jsonl OUT.jsonl [PER_DOMAIN [MAX_CHARS]]
'use strict';
const fs = require('fs');

const [input, output, perDomainArg, maxCharsArg] = process.argv.slice(2);
if (!output) {
  console.error('usage: validation-sample.js VALIDATION.jsonl OUT.jsonl [PER_DOMAIN [MAX_CHARS]]');
  process.exit(2);
}
const perDomain = Number(perDomainArg || 200);
const maxChars = Number(maxCharsArg || 640);
const docs = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l, i) => {
  try {
    return JSON.parse(l);
  } catch (e) {
    console.error(`validation-sample.js: ${input}:${i + 1}: not JSON (${e.message})`);
    process.exit(1);
  }
});
const cut = (text) => {
  if (text.length <= maxChars) return text;
  const head = text.slice(0, maxChars);
  const space = head.search(/\s\S*$/);
  return space > maxChars / 2 ? head.slice(0, space) : head;
};
const lines = [];
for (const label of [0, 1]) {
  const mine = docs.filter((d) => d.label === label);
  const n = Math.min(perDomain, mine.length);
  for (let k = 0; k < n; ++k) {
    const d = mine[Math.floor((k * mine.length) / n)];
    lines.push(JSON.stringify({...d, text: cut(d.text)}));
  }
}
const tmp = `${output}.tmp`;
fs.writeFileSync(tmp, lines.join('\n') + '\n');
fs.renameSync(tmp, output);
console.log(`wrote ${lines.length} documents to ${output}`);
