#!/usr/bin/env bash
# DPO stage on shipped pole adapters (for pole E: chosen = the extravert answer, rejected = the
# introvert answer to the same instruction), then the style/ability evaluation of the shipped set
# with those poles replaced, next to the shipped versions of the same poles
# (bench/eval_adapters.py generate; score it on any machine with `score`).
#
# Usage (repository root, train + eval extras installed, a CUDA GPU advised):
#   POLES="E N F P" MM=/path/to/machine-mindset EXTRA=/path/to/mbti-extra OUT=results \
#       bench/train_dpo.sh
# Environment: POLES (default E), MM, EXTRA (data folders, en/ files used), BASE (default: the embedded GGUF),
#   LR (default 2e-4), BETA (default 0.1), EPOCHS (default 1), WORK (scratch), OUT (results),
#   PY (python interpreter), EXTRA_ARGS (more training flags), SKIP_EVAL=1 (train only; poles
#   already trained in WORK are skipped, so several calls can train poles with other settings).
set -euo pipefail
MM=${MM:-../shared/data/machine-mindset}
EXTRA=${EXTRA:-../shared/data/mbti-extra}
BASE=${BASE:-embedded}
LR=${LR:-2e-4}; BETA=${BETA:-0.1}; EPOCHS=${EPOCHS:-1}
POLES=${POLES:-E}
WORK=${WORK:-runs/dpo}
OUT=${OUT:-runs/dpo/results}
PY=${PY:-python3}
SHIP=mbti_persona/resources/adapters/smollm2-135m-instruct
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
mkdir -p "$OUT"
$PY -m mbti_persona.training.cli --recipe dpo --poles $POLES --epochs "$EPOCHS" --lr "$LR" \
    --dpo-beta "$BETA" --init-adapters "$SHIP" --output "$WORK/dpo" \
    --language en --base-model "$BASE" --base-model-name HuggingFaceTB/SmolLM2-135M-Instruct \
    --data "$MM" "$EXTRA" --rank 4 --alpha 8 --dropout 0.05 --max-length 384 --batch-size 16 \
    --save-steps 100 --logging-steps 5 --max-eval-samples 64 --work-dir "$WORK/work" \
    --seed 0 --no-progress ${EXTRA_ARGS:-}
[ "${SKIP_EVAL:-0}" = 1 ] && exit 0
# the shipped set with POLES replaced by the DPO ones, and the shipped versions for comparison
rm -rf "$WORK/combo" "$WORK/shipped" && mkdir -p "$WORK/combo" "$WORK/shipped"
for p in E I S N T F J P; do
  if [ -d "$WORK/dpo/$p" ]; then
    cp -r "$WORK/dpo/$p" "$WORK/combo/$p"; cp -r "$SHIP/$p" "$WORK/shipped/$p"
    rm -rf "${OUT:?}/$p"; cp -r "$WORK/dpo/$p" "$OUT/$p"
  else
    cp -r "$SHIP/$p" "$WORK/combo/$p"
  fi
done
$PY bench/eval_adapters.py generate --adapters "$WORK/combo" --stage1 "$WORK/shipped" \
    --base "$BASE" --base-name HuggingFaceTB/SmolLM2-135M-Instruct \
    --data "$MM" "$EXTRA" --out "$OUT/gen_dpo.json"
