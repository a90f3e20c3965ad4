// ONNX Runtime's MultiHeadAttention (com.microsoft, CPU) on one shape, for bench/peers/run.sh:
// the median of --repeat runs after one warm-up run, with intra-op threads = --threads, printed
// as one JSON line with the keys of `attn bench attention --json` (n, d, heads, causal, ms,
// gflops; forward FLOPs 4 B H N^2 d, halved when causal, as attn counts them).
// With --inputs DIR it reads q.f32, k.f32, v.f32 (B, N, H*d float32, raw little-endian) from DIR
// instead of random inputs and writes the output to DIR/o_ort.f32 (the check against attn's).
//
// usage: NODE_PATH=bench/peers/.deps/node_modules node bench/peers/ort_mha.js MODEL.onnx \
//          --n 1024 --heads 8 --d 64 [--causal] [--threads 2] [--repeat 5] [--inputs DIR]
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function args(argv) {
  const a = {model: argv[0], n: 1024, heads: 8, d: 64, causal: false, threads: 2, repeat: 5, inputs: null};
  for (let i = 1; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--causal') a.causal = true;
    else if (['--n', '--heads', '--d', '--threads', '--repeat'].includes(k)) a[k.slice(2)] = parseInt(argv[++i], 10);
    else if (k === '--inputs') a.inputs = argv[++i];
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

function median(v) {
  const s = [...v].sort((x, y) => x - y), m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

async function main() {
  const a = args(process.argv.slice(2));
  const E = a.heads * a.d, size = a.n * E, dims = [1, a.n, E];
  const feed = {};
  for (const name of ['query', 'key', 'value']) {
    let x;
    if (a.inputs) {
      const b = fs.readFileSync(path.join(a.inputs, name[0] + '.f32'));
      x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
      if (x.length !== size) throw new Error(`${name}: ${x.length} floats, expected ${size}`);
    } else {
      x = new Float32Array(size);
      for (let i = 0; i < size; i++) x[i] = Math.random() * 2 - 1;
    }
    feed[name] = new ort.Tensor('float32', x, dims);
  }
  const s = await ort.InferenceSession.create(a.model, {
    intraOpNumThreads: a.threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  let out = await s.run(feed);
  const t = [];
  for (let r = 0; r < a.repeat; r++) {
    const t0 = process.hrtime.bigint();
    out = await s.run(feed);
    t.push(Number(process.hrtime.bigint() - t0) * 1e-9);
  }
  if (a.inputs) {
    const o = out.output.data;
    fs.writeFileSync(path.join(a.inputs, 'o_ort.f32'), Buffer.from(o.buffer, o.byteOffset, o.byteLength));
  }
  const sec = median(t), flops = 4 * a.heads * a.n * a.n * a.d * (a.causal ? 0.5 : 1);
  const version = require('onnxruntime-node/package.json').version;
  console.log(JSON.stringify({bench: 'ort', n: a.n, nq: a.n, d: a.d, heads: a.heads, kv_heads: a.heads, batch: 1,
                              causal: a.causal, backward: false, threads: a.threads, repeat: a.repeat,
                              ms: +(sec * 1e3).toFixed(4), gflops: +(flops / sec * 1e-9).toFixed(2),
                              ort: version}));
}

main().catch((e) => { console.error(`ort_mha.js: ${e.message}`); process.exit(1); });
