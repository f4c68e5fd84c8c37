#!/usr/bin/env bash
# Full persona evaluation: the 16 types under four configurations
#   base (no persona), prompt (persona system prompt only), adapter (the shipped pole adapters
#   composed per type, no prompt), adapter+memory (adapters + retrieved self-knowledge block)
# on the embedded SmolLM2-135M-Instruct, CPU only. Sizes are modest so that it fits in about
# 15-20 minutes on 1-2 CPU cores; drop the size flags for the full item sets.
#
#   bash bench/run_evaluation.sh                 # writes runs/evaluation/ and docs/img/eval-*.png
#   OUT=/tmp/ev THREADS=2 bash bench/run_evaluation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false ANONYMIZED_TELEMETRY=False
OUT=${OUT:-runs/evaluation}  # /runs/ is git-ignored
THREADS=${THREADS:-1}
CONFIGS=base,prompt,adapter,adapter+memory
# `mbti-persona eval ...` once the main CLI wires it; the module runs the same command.
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
EVAL=("$PY" -m mbti_persona.evaluation.cli)
mkdir -p "$OUT"

# 1. Questionnaire (A/B prompt, both orders, option texts scored), 6 items per dimension;
#    self-awareness (24 questions, log-prob); ability (60 multiple-choice questions);
#    style (12 open prompts, greedy 64 tokens, judged per dimension) for 4 types.
"${EVAL[@]}" all --mbti all --configs "$CONFIGS" --threads "$THREADS" --out "$OUT" \
    --method texts --items-per-dimension 6 \
    --style-mbti ENFP,ISTJ,ESTJ,INFP --max-prompts 12 --style-max-new-tokens 64 \
    2>&1 | tee "$OUT/log-all.txt"

# 2. Questionnaire, cloze method (question alone, option texts as the answer), all 56 items.
"${EVAL[@]}" questionnaire --mbti all --configs "$CONFIGS" --threads "$THREADS" \
    --out "$OUT/cloze" --method cloze \
    2>&1 | tee "$OUT/log-cloze.txt"

# 3. Figures for docs/evaluation.md
mkdir -p docs/img
cp "$OUT/questionnaire/radar_all.png" docs/img/eval-questionnaire-texts.png
cp "$OUT/cloze/questionnaire/radar_all.png" docs/img/eval-questionnaire-cloze.png
cp "$OUT/self-awareness/radar_all.png" docs/img/eval-self-awareness.png
cp "$OUT/style/radar_all.png" docs/img/eval-style.png
cp "$OUT/cloze/questionnaire/radar/INFP.png" docs/img/eval-radar-INFP.png
cp "$OUT/cloze/questionnaire/radar/ESTJ.png" docs/img/eval-radar-ESTJ.png
echo "done: $OUT" >&2
