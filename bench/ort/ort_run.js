#!/usr/bin/env node
/*
 * ONNX Runtime baseline for bench_models --ort: runs one model on one raw float32 input with
 * a single thread (1 intra-op, 1 inter-op, sequential, graph optimization 'all'), so its
 * latency can be compared with hotsplit's single-threaded run measured in the same session.
 *
 * usage: node ort_run.js MODEL.onnx INPUT.f32 OUTPUT.f32 REPEAT [SHAPE]
 *   INPUT.f32   raw little-endian float32 data of the model's first input
 *   OUTPUT.f32  written with the raw float32 data of the model's first output
 *   SHAPE       input shape as "1x3x224x224"; default: the model's declared shape
 * Prints one line of JSON on stdout:
 *   {"median_ms":..,"p90_ms":..,"min_ms":..,"repeat":..,"ort_version":..,"output_shape":[..]}
 * Exits non-zero with a message on stderr on any failure.
 */
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

function fail(msg) {
    process.stderr.write(`ort_run: ${msg}\n`);
    process.exit(1);
}

function quantile(sorted, q) {
    /* Same rule as bench_models: element at floor(q * (n - 1)) of the sorted samples. */
    return sorted[Math.floor(q * (sorted.length - 1))];
}

async function main(argv) {
    if (argv.length < 4 || argv.length > 5)
        fail('usage: node ort_run.js MODEL.onnx INPUT.f32 OUTPUT.f32 REPEAT [SHAPE]');
    const [modelPath, inputPath, outputPath, repeatText, shapeText] = argv;
    const repeat = Number.parseInt(repeatText, 10);
    if (!(repeat >= 1))
        fail(`REPEAT must be a positive integer, got '${repeatText}'`);

    const session = await ort.InferenceSession.create(modelPath, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3, /* errors only: old test models warn about their opset */
    });
    const inputName = session.inputNames[0];
    const outputName = session.outputNames[0];

    let shape;
    if (shapeText) {
        shape = shapeText.split(/[x,]/).map((s) => Number.parseInt(s, 10));
        if (shape.some((d) => !(d >= 1)))
            fail(`bad SHAPE '${shapeText}'`);
    } else {
        const meta = session.inputMetadata && session.inputMetadata[0];
        if (!meta || !meta.shape || meta.shape.some((d) => typeof d !== 'number'))
            fail(`input '${inputName}' has no static shape in the model: pass SHAPE`);
        shape = meta.shape;
    }
    const numel = shape.reduce((a, b) => a * b, 1);

    const buf = fs.readFileSync(inputPath);
    if (buf.length !== numel * 4)
        fail(`${inputPath}: ${buf.length} bytes, expected ${numel * 4} for shape ${shape.join('x')}`);
    /* Copy into an aligned Float32Array (a Buffer's offset need not be a multiple of 4). */
    const data = new Float32Array(numel);
    new Uint8Array(data.buffer).set(buf);
    const feeds = { [inputName]: new ort.Tensor('float32', data, shape) };

    let out;
    for (let i = 0; i < 3; i++)
        out = await session.run(feeds);

    const ms = [];
    for (let i = 0; i < repeat; i++) {
        const t0 = process.hrtime.bigint();
        out = await session.run(feeds);
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ms.sort((a, b) => a - b);

    const y = out[outputName];
    if (y.type !== 'float32')
        fail(`output '${outputName}' is ${y.type}, expected float32`);
    fs.writeFileSync(outputPath, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));

    process.stdout.write(JSON.stringify({
        median_ms: quantile(ms, 0.5),
        p90_ms: quantile(ms, 0.9),
        min_ms: ms[0],
        repeat,
        ort_version: ort.env.versions ? ort.env.versions.node : 'unknown',
        output_shape: y.dims,
    }) + '\n');
    await session.release();
}

main(process.argv.slice(2)).catch((e) => fail(e && e.message ? e.message : String(e)));
