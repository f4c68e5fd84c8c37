#!/usr/bin/env bash
# Rebuild the shipped English pole adapters (E I S N T F J P) for SmolLM2-135M-Instruct:
#   stage 1  `dimension` recipe (SFT per pole + base-model replay), then
#   stage 2  `self-awareness` recipe on top (questions about oneself + rehearsal + replay),
# and copy the result into mbti_persona/resources/adapters/smollm2-135m-instruct/.
#
# Usage (from the repository root, train extra installed, a CUDA GPU strongly advised):
#   MM=/path/to/machine-mindset EXTRA=/path/to/mbti-extra bench/train_shipped.sh
# Environment:
#   MM, EXTRA  data folders (default ../shared/data/machine-mindset and ../shared/data/mbti-extra;
#              only their en/ files are used: E/I from Machine Mindset, S N T F J P from mbti-extra)
#   BASE       base model (default: the embedded GGUF; on the GPU box /root/mm/model.gguf)
#   WORK       scratch folder (default runs/shipped)
#   DEST       where the final adapters go (default the package folder; "-" = don't copy)
#   PY         python interpreter (default python3)
#   EXTRA_ARGS more flags for every step, e.g. "--max-samples 4 --max-steps 1" for a smoke test
set -euo pipefail
MM=${MM:-../shared/data/machine-mindset}
EXTRA=${EXTRA:-../shared/data/mbti-extra}
BASE=${BASE:-embedded}
WORK=${WORK:-runs/shipped}
DEST=${DEST:-mbti_persona/resources/adapters/smollm2-135m-instruct}
PY=${PY:-python3}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

COMMON=(--language en --base-model "$BASE" --base-model-name HuggingFaceTB/SmolLM2-135M-Instruct
        --data "$MM" "$EXTRA" --rank 4 --alpha 8 --dropout 0.05 --max-length 384 --batch-size 16
        --replay-ratio 0.2 --replay-max-new-tokens 160 --replay-batch-size 128
        --save-steps 100 --logging-steps 5 --max-eval-samples 64 --work-dir "$WORK/work"
        --seed 0 --no-progress ${EXTRA_ARGS:-})

# stage 1: E/I have ~1950 training pairs each, the other six poles ~335: more epochs for those
$PY -m mbti_persona.training.cli --recipe dimension --poles E I --epochs 2 --lr 1e-3 \
    --output "$WORK/dimension" "${COMMON[@]}"
$PY -m mbti_persona.training.cli --recipe dimension --poles S N T F J P --epochs 4 --lr 1e-3 \
    --output "$WORK/dimension" "${COMMON[@]}"
# stage 2: self-awareness on top of every stage-1 adapter
$PY -m mbti_persona.training.cli --recipe self-awareness --poles all --epochs 3 --lr 3e-4 \
    --rehearsal-ratio 1.0 --init-adapters "$WORK/dimension" --output "$WORK/final" "${COMMON[@]}"

if [ "$DEST" != "-" ]; then
  mkdir -p "$DEST"
  for p in E I S N T F J P; do
    rm -rf "${DEST:?}/$p"
    cp -r "$WORK/final/$p" "$DEST/$p"
  done
  du -ch "$DEST"/*/adapter_model.safetensors | tail -1
fi
