#!/usr/bin/env bash
# Benchmarks every zoo model single-threaded against OpenBLAS sgemm and ONNX Runtime, twice:
# once with the environment as it is, once with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset
# (OpenBLAS then picks its kernels from the CPU it detects), so a forced core type shows up as
# a difference between the two tables. Each run prints the OpenBLAS core it used.
#
# Writes under out/bench/: models.json and models.csv (environment as set), the same with
# suffix _env_unset for the second run, and models.png (latency per model, hotsplit vs ORT).
# Extra arguments go to both bench_models runs (e.g. --repeat 20 --models-list resnet18).
# BUILD_DIR (default build-bench) is the Release build directory it uses.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
out="$root/out/bench"
models="$root/out/models"
cd "$root"

echo "bench: building bench_models (Release) in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHS_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target bench_models -j"$(nproc)" >/dev/null

bash "$root/scripts/setup_ort.sh"
mkdir -p "$out" "$models"

bench=("$build/bench/bench_models" --ort --models "$models"
       --ort-script "$root/bench/ort/ort_run.js")

echo
echo "bench: run 1, environment as set:" \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-(unset)}"
"${bench[@]}" --json "$out/models.json" --csv "$out/models.csv" "$@"
echo "bench: run 1 used OpenBLAS core $(sed -n 's/.*"corename": "\([^"]*\)".*/\1/p' "$out/models.json")"

echo
echo "bench: run 2, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${bench[@]}" \
    --json "$out/models_env_unset.json" --csv "$out/models_env_unset.csv" "$@"
echo "bench: run 2 used OpenBLAS core" \
     "$(sed -n 's/.*"corename": "\([^"]*\)".*/\1/p' "$out/models_env_unset.json")"

# Columns of models.csv: 1 model, 5 median_ms, 9 ort_median_ms.
core1="$(sed -n 's/.*"corename": "\([^"]*\)".*/\1/p' "$out/models.json")"
core2="$(sed -n 's/.*"corename": "\([^"]*\)".*/\1/p' "$out/models_env_unset.json")"
gnuplot <<EOF
set terminal pngcairo size 1000,560 noenhanced
set output "$out/models.png"
set datafile separator ","
set title "Single-threaded latency per model (median of runs; lower is better)"
set ylabel "ms"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside bottom center horizontal maxrows 2
set yrange [0:*]
plot "$out/models.csv" every ::1 using 5:xtic(1) title "hotsplit (core $core1)", \
     "" every ::1 using 9 title "ONNX Runtime (run 1)", \
     "$out/models_env_unset.csv" every ::1 using 5 title "hotsplit, OPENBLAS_* unset (core $core2)", \
     "" every ::1 using 9 title "ONNX Runtime (run 2)"
EOF
echo
echo "bench: wrote $out/models.json, models.csv, models_env_unset.json, models_env_unset.csv," \
     "models.png"
