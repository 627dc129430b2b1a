#!/usr/bin/env node
// Writes MODEL_CARD.md for the default models from what scripts/train-default
// left in its output folder: the corpus's stats.json, each stage's
// training.json and command line (from its log), the evaluations, the audits
// and the machine. Usage: scripts/model-card.js CORPUS_DIR RUN_DIR OUT_FILE HARDWARE
'use strict';
const fs = require('fs');
const path = require('path');

const [corpus, run, outFile, hardware] = process.argv.slice(2);
if (!outFile) {
  console.error('usage: model-card.js CORPUS_DIR RUN_DIR OUT_FILE HARDWARE');
  process.exit(2);
}
const json = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const stats = json(path.join(corpus, 'stats.json'));
const stages = ['base', 'fine', 'superposition-1d', 'superposition-2d', 'superposition-1d-centered'];
const training = Object.fromEntries(stages.map((s) => [s, json(path.join(run, s, 'training.json'))]));
// "== NAME: superpose ARGS" lines of each log; the last one is the run that finished.
const command = (stage) => {
  const lines = fs.readFileSync(path.join(run, `${stage}.log`), 'utf8').split('\n')
    .filter((l) => l.startsWith(`== ${stage}: superpose `));
  return lines[lines.length - 1].slice(`== ${stage}: `.length)
    .replaceAll(run + '/', 'runs/default/').replaceAll(corpus + '/', 'data/corpus/');
};
const seconds = (stage) => {
  // A resumed run adds its time to the earlier ones: sum the "== NAME: N s" lines.
  return fs.readFileSync(path.join(run, `${stage}.log`), 'utf8').split('\n')
    .map((l) => l.match(new RegExp(`^== ${stage}: (\\d+) s$`))).filter(Boolean)
    .reduce((sum, m) => sum + Number(m[1]), 0);
};
const mb = (bytes) => (bytes / 1e6).toFixed(2);
const evalRows = (name) => json(path.join(run, `eval-${name}.json`)).rows;
const row = (rows, model, domain) => rows.find((r) => r.model === model && r.domain === domain);

let card = `# The default models

An English base GPT-2 trained from scratch, its French expert (the base
fine-tuned on French), and superpositions of the two, all trained with this
project's commands by \`scripts/train-default\`. Causal unless said otherwise.

| folder | what | parameters | storage |
| --- | --- | --- | --- |
| \`base/\` | GPT-2, ${training.base.parameters.toLocaleString('en')} parameters, English | pretrained | F16 |
| \`fine/\` | the base fine-tuned on French | fine-tuned | F16 |
| \`superposition-1d/\` | 1D α (one per layer), an autoencoder per block, causal convolution | trained, experts frozen | F32 |
| \`superposition-2d/\` | 2D α (per layer and dimension), local + global autoencoders, causal | trained, experts frozen | F32 |

## Data

Built by \`scripts/make-corpus\` (recipe \`assets/data/corpus-recipe.json\`;
sources and licences in \`assets/README.md\`), split by document with seed
${stats.seed}:

| domain | label | train documents | train MB | validation documents | validation MB |
| --- | --- | --- | --- | --- | --- |
`;
for (const [domain, d] of Object.entries(stats.domains)) {
  card += `| ${domain} | ${d.label} | ${d.train.documents} | ${mb(d.train.bytes)} | ${d.validation.documents} | ${mb(d.validation.bytes)} |\n`;
}
card += `
Tokenizer: byte-level BPE, 8192 tokens, trained on the training split
(\`superpose train-tokenizer\`). \`assets/data/validation.jsonl\` is the whole
validation split.

## Commands, time and hardware

Hardware: ${hardware}.

| stage | command | steps | time |
| --- | --- | --- | --- |
`;
for (const stage of stages) {
  card += `| ${stage} | \`${command(stage)}\` | ${training[stage].steps} | ${seconds(stage)} s |\n`;
}
card += `
Seeds, learning rates and every other option are in each folder's
\`training.json\`; per-step losses and per-domain validation in
\`metrics.jsonl\` (not shipped; \`scripts/train-default\` writes them).

## Evaluation

\`superpose eval --superposition assets/models/superposition-1d --data assets/data/validation.jsonl\`
(windows of 128 tokens; perplexity with a 95% document-clustered interval):

`;
card += '<!-- eval superposition-1d -->\n' + fs.readFileSync(path.join(run, 'eval-superposition-1d.md'), 'utf8')
  .replaceAll(corpus + '/validation.jsonl', 'assets/data/validation.jsonl').trim() + '\n<!-- end -->\n\n';
card += `The 2D superposition (\`--superposition assets/models/superposition-2d\`):

<!-- eval superposition-2d -->
` + fs.readFileSync(path.join(run, 'eval-superposition-2d.md'), 'utf8')
  .replaceAll(corpus + '/validation.jsonl', 'assets/data/validation.jsonl').trim() + '\n<!-- end -->\n\n';

// The paper's effect, stated from the numbers above.
card += '## What the numbers show\n\n';
for (const name of ['superposition-1d', 'superposition-2d']) {
  const rows = evalRows(name);
  for (const domain of Object.keys(stats.domains)) {
    const base = row(rows, 'base', domain).ppl, fine = row(rows, 'fine', domain).ppl;
    const sup = row(rows, 'superposition', domain).ppl;
    const a0 = row(rows, 'superposition-a0', domain).ppl, a1 = row(rows, 'superposition-a1', domain).ppl;
    const best = Math.min(base, fine);
    card += `- ${name}, ${domain}: base ${base.toFixed(2)}, fine ${fine.toFixed(2)}, superposition ` +
      `${sup.toFixed(2)} (${(100 * (sup / best - 1)).toFixed(1)}% from the better expert); ` +
      `α = 0 ${a0.toFixed(2)}, α = 1 ${a1.toFixed(2)}.\n`;
  }
}

// The centered variant: how much of its perplexity is the leak.
const centered = evalRows('superposition-1d-centered');
const causal = evalRows('superposition-1d');
const audit = json(path.join(run, 'audit-superposition-1d-centered.json'));
const auditCausal = json(path.join(run, 'audit-superposition-1d.json'));
card += `
## The centered convolution's leak

A 1D superposition trained the same way but with the notebooks' centered
convolution (\`--conv centered\`, not shipped) reads the next token:

`;
for (const domain of Object.keys(stats.domains)) {
  card += `- ${domain}: teacher-forced perplexity ${row(centered, 'superposition', domain).ppl.toFixed(2)} centered ` +
    `against ${row(causal, 'superposition', domain).ppl.toFixed(2)} causal.\n`;
}
const gap = (a) => a.generation_gap;
card += `- \`superpose audit\`: changing the tokens after t moves ${audit.state} at positions ≤ t by up to ` +
  `${audit.max_deviation.toPrecision(3)} (causal model: ${auditCausal.max_deviation.toPrecision(3)}).
- Its own samples (${gap(audit).sequences} continuations of ${gap(audit).tokens / gap(audit).sequences} tokens from
  validation prompts): perplexity ${gap(audit).ppl_generation.toFixed(2)} as generated against
  ${gap(audit).ppl_teacher_forced.toFixed(2)} when the same tokens are scored teacher-forced; for the causal
  model ${gap(auditCausal).ppl_generation.toFixed(2)} against ${gap(auditCausal).ppl_teacher_forced.toFixed(2)}.
  The ratio is what teacher forcing hides: the perplexity gain that comes from the leak.
`;
fs.writeFileSync(outFile, card);
console.log(`wrote ${outFile}`);
