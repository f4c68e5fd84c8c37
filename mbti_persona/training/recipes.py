"""Training recipes for personality adapters, on TRL (SFT / DPO trainers) and PEFT LoRA.

Recipes (``TrainConfig.recipe``):

``dimension``
    One LoRA per pole (E, I, S, N, T, F, J, P), supervised fine-tuning on that pole's behaviour
    answers. The engine composes four of them into a type.
``type``
    One LoRA per whole type, SFT on the union of its four poles' data (the Machine Mindset recipe).
``self-awareness``
    Continues training a stage-1 pole/type adapter on question/answer pairs about oneself
    (:func:`mbti_persona.self_knowledge.build_self_awareness_pairs`). A pole adapter gets the pairs
    of its dimension's categories (e.g. "energy" for I) from the eight types holding that pole; a
    type adapter gets all of its type's pairs. Behaviour records are rehearsed alongside
    (``rehearsal_ratio``) so that stage 1 is not forgotten.
``dpo``
    Direct preference optimisation from the stage-1 adapter: chosen = the target pole's answer,
    rejected = the opposite pole's answer to the same instruction (optionally plus the authors'
    order-checked ``dpo/`` files). The reference policy is a frozen copy of the stage-1 adapter.

All SFT data is formatted with the tokenizer's chat template (optional system turn, user =
instruction + input, assistant = answer) and the loss is computed on the answer only. General
ability is protected by *replay*: the base model's own greedy answers to a sample of instructions
from the other dimensions, generated once, cached under the work folder and mixed in at
``replay_ratio``; their held-out loss (``eval_replay_loss``) measures the drift.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from ..adapters import AdapterError, AdapterMeta, read_adapter, write_adapter_meta
from ..data import DataError, load_dimension, resolve_data_dirs, split_pairs
from ..data.behaviour import BehaviourRecord
from ..data.preferences import PreferencePair, load_author_dpo, preference_pairs
from ..types import DIMENSIONS, POLES, types_with
from .callbacks import (
    InterruptAfterStep,
    JsonlLogger,
    TrainingInterrupted,
    checkpoint_step,
    clear_checkpoints,
    last_checkpoint,
)
from .config import TrainConfig
from .report import CURVE_FILE, REPORT_FILE, device_description, library_versions, plot_loss_curve
from .report import read_report, write_report

logger = logging.getLogger(__name__)

__all__ = [
    "AdapterResult",
    "TrainingError",
    "train",
    "adapter_folder_name",
    "is_finished",
    "chat_messages",
    "sft_rows",
    "self_awareness_records",
    "ReplayCache",
    "make_trainable",
]

_SENTENCE_END = re.compile(r"[.!?。！？](?=\s|$)")


class TrainingError(RuntimeError):
    """Training cannot start or finish (missing stage-1 adapter, missing packages, no data...)."""


@dataclass
class AdapterResult:
    kind: str  # "pole" or "type"
    name: str  # "E" or "INFP"
    path: Path
    status: str  # "trained" or "skipped"
    report: dict[str, Any] | None = None


@dataclass
class _Job:
    kind: str
    name: str
    folder: str
    poles: tuple[str, ...]
    train_rows: list[dict] = field(default_factory=list)
    eval_rows: list[dict] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    replay_train: list[str] = field(default_factory=list)
    replay_eval: list[str] = field(default_factory=list)
    init_dir: Path | None = None
    init_meta: AdapterMeta | None = None


# -- small helpers ---------------------------------------------------------------------------

def adapter_folder_name(kind: str, name: str) -> str:
    """'E' for a pole adapter, 'type-INFP' for a type adapter."""
    return name if kind == "pole" else f"type-{name}"


def is_finished(folder: str | Path, recipe: str) -> bool:
    """True when ``folder`` holds a complete adapter made by ``recipe`` (weights, metadata, report)."""
    folder = Path(folder)
    try:
        meta = read_adapter(folder)
    except AdapterError:
        return False
    return meta.recipe == recipe and (folder / REPORT_FILE).is_file()


def chat_messages(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": prompt})
    return msgs


def sft_rows(items: Iterable[tuple[str, str]], system: str | None = None) -> list[dict]:
    """Prompt-completion rows in conversational form, for TRL's SFTTrainer (completion-only loss)."""
    return [{"prompt": chat_messages(p, system),
             "completion": [{"role": "assistant", "content": a}]} for p, a in items]


def _dpo_rows(pairs: Iterable[PreferencePair], system: str | None = None) -> list[dict]:
    return [{"prompt": chat_messages(p.prompt, system),
             "chosen": [{"role": "assistant", "content": p.chosen}],
             "rejected": [{"role": "assistant", "content": p.rejected}]} for p in pairs]


def _sample(items: list, n: int | None, seed: Any) -> list:
    if n is None or n >= len(items):
        return list(items)
    rng = random.Random(f"sample:{seed}")
    idx = sorted(rng.sample(range(len(items)), n))
    return [items[i] for i in idx]


def _prompt_of(instruction: str, inp: str) -> str:
    return f"{instruction}\n\n{inp}" if inp else instruction


def _require_training_packages(recipe: str) -> None:
    missing = []
    for mod in ("trl", "datasets", "peft", "accelerate"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise TrainingError(
            f"training needs {', '.join(missing)}: pip install 'mbti-persona[train]' "
            "(trl, datasets, accelerate, matplotlib)"
        )


def make_trainable(model: Any) -> Any:
    """Let the Trainer fine-tune a model loaded from a GGUF file and dequantised on load.

    transformers keeps a GGUF "quantizer" on such a model although its weights are ordinary float
    tensors, and the Trainer then refuses to train it. When every linear layer is a plain
    ``torch.nn.Linear`` with float weights, the marker is dropped; a model whose weights are still
    packed in GGUF blocks is refused with a clear error.
    """
    import torch

    if getattr(model, "hf_quantizer", None) is None:
        return model
    method = str(getattr(model.hf_quantizer.quantization_config, "quant_method", "")).lower()
    if "gguf" not in method:
        return model  # a real quantisation method (bitsandbytes...): let the Trainer decide
    for name, mod in model.named_modules():
        w = getattr(mod, "weight", None)
        if w is not None and not isinstance(w, torch.nn.Parameter) or (
                isinstance(w, torch.Tensor) and not w.is_floating_point()):
            raise TrainingError(
                f"{name} still holds packed GGUF weights: load the base model dequantised "
                "(uninstall the `kernels` package, or pass a transformers folder) to train on it"
            )
    model.hf_quantizer = None
    if "is_quantized" in vars(model):  # set as an instance attribute at load time
        model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        try:
            del model.config.quantization_config
        except AttributeError:
            model.config.quantization_config = None
    return model


def _default_log(msg: str) -> None:
    print(f"[mbti-persona train] {msg}", file=sys.stderr, flush=True)


# -- self-awareness data -----------------------------------------------------------------

def self_awareness_records(kind: str, name: str, language: str = "en", seed: int = 0
                           ) -> list[dict[str, str]]:
    """Alpaca records about oneself for a pole ("I") or type ("INFP") adapter.

    A pole gets the pairs whose question belongs to its dimension's categories (e.g. "energy" for
    E/I), collected from every type that holds the pole and de-duplicated; a type gets all of its
    own pairs.
    """
    try:
        from .. import self_knowledge as sk
    except ImportError as e:
        raise TrainingError("the self-awareness recipe needs mbti_persona.self_knowledge, which is "
                            f"not available: {e}") from e
    if kind == "type":
        return list(sk.build_self_awareness_pairs(name, language, seed=seed))
    dim = POLES[name].dimension
    cats = [c for c, d in sk.CATEGORY_DIMENSION.items() if d == dim]
    questions = sk.self_awareness_questions(language)
    wanted = {q for c in cats for q in questions.get(c, ())}
    out, seen = [], set()
    for t in types_with([name]):
        for rec in sk.build_self_awareness_pairs(t, language, seed=seed):
            key = (rec["instruction"], rec["output"])
            if rec["instruction"] in wanted and key not in seen:
                seen.add(key)
                out.append(dict(rec))
    return out


# -- replay ------------------------------------------------------------------------------

class ReplayCache:
    """The base model's own answers to instructions, kept in a JSON-lines file.

    Answers are greedy (with a mild repetition penalty, which keeps the 135M model from looping);
    an answer cut by ``max_new_tokens`` is trimmed to its last full sentence.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.answers: dict[str, str] = {}
        self.generated_now = 0
        self.seconds = 0.0
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                    self.answers[rec["prompt"]] = rec["answer"]
                except (ValueError, KeyError):
                    continue  # a line cut by an interruption

    @staticmethod
    def key(base_info: Any, language: str, system: str | None, max_new_tokens: int) -> str:
        raw = json.dumps([base_info.name, base_info.fingerprint, language, system, max_new_tokens])
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    def ensure(self, prompts: list[str], base: Any, *, system: str | None, max_new_tokens: int,
               batch_size: int, log: Callable[[str], None], progress: bool = True) -> None:
        import torch

        todo = sorted({p for p in prompts if p not in self.answers}, key=len)
        if not todo:
            return
        log(f"replay: generating the base model's answers to {len(todo)} instructions "
            f"(cached in {self.path})")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        model, tok = base.model, base.tokenizer
        was_training = model.training
        model.eval()
        t0 = time.perf_counter()
        eos = {tok.eos_token_id} | ({tok.convert_tokens_to_ids("<|im_end|>")} - {None})
        bar = _tqdm(total=len(todo), desc="replay", disable=not progress)
        device = next(model.parameters()).device
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                    else _nullcontext())
        with open(self.path, "a", encoding="utf-8") as f:
            for i in range(0, len(todo), batch_size):
                chunk = todo[i:i + batch_size]
                texts = [tok.apply_chat_template(chat_messages(p, system), tokenize=False,
                                                 add_generation_prompt=True) for p in chunk]
                enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                enc = {k: v.to(device) for k, v in enc.items()}
                with torch.no_grad(), autocast:
                    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                         repetition_penalty=1.15, pad_token_id=tok.pad_token_id,
                                         eos_token_id=sorted(eos))
                new = out[:, enc["input_ids"].shape[1]:]
                for p, ids in zip(chunk, new.tolist()):
                    finished = any(t in eos for t in ids)
                    text = tok.decode(ids, skip_special_tokens=True).strip()
                    if not finished:
                        text = _trim_to_sentence(text)
                    if not text:
                        text = "..."
                    self.answers[p] = text
                    f.write(json.dumps({"prompt": p, "answer": text, "finished": finished},
                                       ensure_ascii=False) + "\n")
                f.flush()
                bar.update(len(chunk))
        bar.close()
        if was_training:
            model.train()
        self.generated_now += len(todo)
        self.seconds += time.perf_counter() - t0


def _trim_to_sentence(text: str) -> str:
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if ends and ends[-1] >= 0.4 * len(text):
        return text[:ends[-1]]
    return text


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _tqdm(**kwargs):
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


# -- planning: which data each adapter gets ----------------------------------------------

def _behaviour_records(dirs, cfg: TrainConfig, poles: Iterable[str]
                       ) -> tuple[list[BehaviourRecord], list[BehaviourRecord]]:
    train, val = [], []
    for p in poles:
        pairs = load_dimension(dirs, cfg.language, POLES[p].dimension)
        tr, va = split_pairs(pairs, cfg.validation_fraction, cfg.seed)
        train += [pr.record(p) for pr in tr]
        val += [pr.record(p) for pr in va]
    return train, val


def _replay_pools(dirs, cfg: TrainConfig) -> dict[str, tuple[list[str], list[str]]]:
    """dimension -> (train prompts, validation prompts) available for the replay sample."""
    pools = {}
    for dim in DIMENSIONS:
        try:
            pairs = load_dimension(dirs, cfg.language, dim, required=False)
        except DataError:
            raise
        if pairs:
            tr, va = split_pairs(pairs, cfg.validation_fraction, cfg.seed)
            pools[dim] = (sorted({p.prompt for p in tr}), sorted({p.prompt for p in va}))
    return pools


def _pick_replay(pools, own_dims: set[str], n_train: int, n_eval: int, seed: Any
                 ) -> tuple[list[str], list[str]]:
    """Instructions of the *other* dimensions (so that they carry no conflicting target), or of all
    dimensions when there is no other."""
    other = [d for d in pools if d not in own_dims] or list(pools)
    tr = sorted({p for d in other for p in pools[d][0]})
    va = sorted({p for d in other for p in pools[d][1]} - set(tr))
    return _sample(tr, n_train, ("replay", seed)), _sample(va, n_eval, ("replay-eval", seed))


def _plan(cfg: TrainConfig, dirs: list[Path], kind: str, name: str, pools) -> _Job:
    poles = (name,) if kind == "pole" else tuple(name)
    job = _Job(kind, name, adapter_folder_name(kind, name), poles)
    system = cfg.system_prompt
    n_eval_cap = cfg.max_eval_samples if cfg.eval else 0

    if cfg.recipe in ("self-awareness", "dpo"):
        job.init_dir = cfg.init_path / job.folder
        try:
            job.init_meta = read_adapter(job.init_dir)
        except AdapterError as e:
            first = "dimension" if kind == "pole" else "type"
            raise TrainingError(
                f"the {cfg.recipe} recipe continues a stage-1 adapter, but {job.init_dir} is not "
                f"one ({e}). Train it first (mbti-persona train --recipe {first} --output "
                f"{cfg.init_path}), or point --init-adapters to the folder holding it"
            ) from None

    if cfg.recipe == "dpo":
        pairs_tr, pairs_va = [], []
        for p in poles:
            pairs_tr += preference_pairs(dirs, cfg.language, p, split="train",
                                         validation_fraction=cfg.validation_fraction, seed=cfg.seed)
            pairs_va += preference_pairs(dirs, cfg.language, p, split="validation",
                                         validation_fraction=cfg.validation_fraction, seed=cfg.seed)
            if cfg.use_author_dpo:
                extra = [x for x in load_author_dpo(dirs, language=cfg.language, pole=p)
                         if x.split == "train"]
                seen = {(x.prompt, x.chosen) for x in pairs_tr}
                pairs_tr += [x for x in extra if (x.prompt, x.chosen) not in seen]
        pairs_tr = _sample(pairs_tr, cfg.max_samples, (cfg.seed, name))
        pairs_va = _sample(pairs_va, n_eval_cap, (cfg.seed, name, "eval"))
        if not pairs_tr:
            raise TrainingError(f"no preference pairs for {name} in {cfg.language}")
        job.train_rows = _dpo_rows(pairs_tr, system)
        job.eval_rows = _dpo_rows(pairs_va, system)
        job.sizes = {"preference_train": len(pairs_tr), "preference_eval": len(pairs_va)}
        return job

    # SFT recipes
    items: list[tuple[str, str]] = []
    eval_items: list[tuple[str, str]] = []
    if cfg.recipe in ("dimension", "type"):
        tr, va = _behaviour_records(dirs, cfg, poles)
        tr = _sample(tr, cfg.max_samples, (cfg.seed, name))
        va = _sample(va, n_eval_cap, (cfg.seed, name, "eval"))
        items = [(r.prompt, r.output) for r in tr]
        eval_items = [(r.prompt, r.output) for r in va]
        job.sizes = {"behaviour_train": len(items), "behaviour_eval": len(eval_items)}
    else:  # self-awareness
        sa = self_awareness_records(kind, name, cfg.language, cfg.seed)
        if not sa:
            raise TrainingError(f"no self-awareness pairs for {name} in {cfg.language}: is the "
                                "self-knowledge corpus installed?")
        from ..data.behaviour import split_of

        sa_tr = [r for r in sa if split_of(r["instruction"] + r["output"], r.get("input", ""),
                                           cfg.validation_fraction, cfg.seed) == "train"]
        sa_va = [r for r in sa if r not in sa_tr]
        sa_tr = _sample(sa_tr, cfg.max_samples, (cfg.seed, name))
        items = [(_prompt_of(r["instruction"], r.get("input", "")), r["output"]) for r in sa_tr]
        eval_items = [(_prompt_of(r["instruction"], r.get("input", "")), r["output"])
                      for r in _sample(sa_va, n_eval_cap, (cfg.seed, name, "eval"))]
        rehearsal = []
        if dirs and cfg.rehearsal_ratio > 0:
            btr, _ = _behaviour_records(dirs, cfg, poles)
            n = max(1, round(cfg.rehearsal_ratio * len(items)))
            rehearsal = [(r.prompt, r.output) for r in _sample(btr, n, (cfg.seed, name, "reh"))]
        job.sizes = {"self_awareness_train": len(items), "self_awareness_eval": len(eval_items),
                     "rehearsal_train": len(rehearsal)}
        items = items + rehearsal
    job.train_rows = sft_rows(items, system)
    job.eval_rows = sft_rows(eval_items, system)
    if cfg.replay_ratio > 0 and pools:
        n_rep = max(1, round(cfg.replay_ratio * len(items)))
        n_rep_eval = min(n_eval_cap or 0, max(1, len(eval_items) // 2)) if cfg.eval else 0
        own = {POLES[p].dimension for p in poles}
        job.replay_train, job.replay_eval = _pick_replay(pools, own, n_rep, n_rep_eval,
                                                         (cfg.seed, name))
    return job


# -- the training loop around TRL ----------------------------------------------------------

def train(config: TrainConfig, base: Any = None, *, log: Callable[[str], None] | None = None
          ) -> list[AdapterResult]:
    """Train every adapter the config asks for; finished ones are skipped (unless overwrite).

    ``base``: an already loaded :class:`~mbti_persona.base_model.LoadedBaseModel` to reuse (it is
    left without adapters afterwards); default: load ``config.base_model``.
    Raises :class:`TrainingInterrupted` (a KeyboardInterrupt) when stopped; rerun with
    ``resume=True`` to continue from the last checkpoint.
    """
    log = log or _default_log
    cfg = config.validate()
    _require_training_packages(cfg.recipe)
    if cfg.data:
        dirs = resolve_data_dirs(cfg.data)
    elif cfg.recipe == "self-awareness":
        dirs = []
    else:
        raise TrainingError(f"the {cfg.recipe} recipe needs behaviour data: pass --data DIR "
                            "(several may be given) or --data FarReelAILab/Machine_Mindset")
    out_dir = cfg.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[AdapterResult] = []
    todo: list[tuple[str, str]] = []
    for kind, name in cfg.targets():
        folder = out_dir / adapter_folder_name(kind, name)
        if is_finished(folder, cfg.recipe) and not cfg.overwrite:
            log(f"{folder} is already trained ({cfg.recipe}): skipped (use --overwrite to retrain)")
            results.append(AdapterResult(kind, name, folder, "skipped", read_report(folder)))
        else:
            todo.append((kind, name))
    if not todo:
        return results

    pools = _replay_pools(dirs, cfg) if (dirs and cfg.replay_ratio > 0
                                        and cfg.recipe != "dpo") else {}
    jobs = [_plan(cfg, dirs, kind, name, pools) for kind, name in todo]

    if base is None:
        from ..base_model import load_base_model

        log(f"loading base model {cfg.base_model or 'embedded'}")
        base = load_base_model(cfg.base_model, device=cfg.device, name=cfg.base_model_name)
    info = base.info
    if getattr(base.model, "peft_config", None):
        raise TrainingError("the base model given already carries adapters: pass a bare base model")
    make_trainable(base.model)

    replay = None
    if any(j.replay_train or j.replay_eval for j in jobs):
        key = ReplayCache.key(info, cfg.language, cfg.system_prompt, cfg.replay_max_new_tokens)
        replay = ReplayCache(cfg.work_path / "replay" / f"replay-{cfg.language}-{key}.jsonl")
        needed = sorted({p for j in jobs for p in j.replay_train + j.replay_eval})
        replay.ensure(needed, base, system=cfg.system_prompt,
                      max_new_tokens=cfg.replay_max_new_tokens,
                      batch_size=cfg.replay_batch_size, log=log, progress=cfg.progress)
        for j in jobs:
            j.train_rows += sft_rows(((p, replay.answers[p]) for p in j.replay_train),
                                     cfg.system_prompt)
            j.sizes["replay_train"] = len(j.replay_train)
            j.sizes["replay_eval"] = len(j.replay_eval)

    bar = _tqdm(total=len(jobs), desc=f"{cfg.recipe} adapters", disable=not cfg.progress
                or len(jobs) < 2, position=0)
    for job in jobs:
        log(f"training {adapter_folder_name(job.kind, job.name)} ({cfg.recipe}): "
            + ", ".join(f"{k}={v}" for k, v in job.sizes.items()))
        results.append(_train_one(cfg, job, base, replay, dirs, log))
        bar.update(1)
    bar.close()
    return results


def _train_one(cfg: TrainConfig, job: _Job, base: Any, replay: ReplayCache | None,
               dirs: list[Path], log: Callable[[str], None]) -> AdapterResult:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, PeftModel, get_peft_model

    work = cfg.work_path / f"{cfg.recipe}-{job.folder}"
    work.mkdir(parents=True, exist_ok=True)
    resume_from = last_checkpoint(work) if cfg.resume else None
    if resume_from is None:
        if last_checkpoint(work) is not None:
            log(f"{work} holds checkpoints of an earlier run; starting over (use --resume to "
                "continue from them)")
        clear_checkpoints(work)
    else:
        log(f"resuming {job.folder} from {resume_from}")

    if cfg.max_steps > 0:
        total_steps = cfg.max_steps
    else:
        per_epoch = math.ceil(len(job.train_rows) / (cfg.batch_size * cfg.grad_accum))
        total_steps = max(1, math.ceil(per_epoch * cfg.epochs))
    warmup = int(round(cfg.warmup_ratio * total_steps))

    # the model: a fresh LoRA, or the stage-1 adapter continued
    torch.manual_seed(cfg.seed)
    if job.init_dir is not None:
        model = PeftModel.from_pretrained(base.model, str(job.init_dir), is_trainable=True)
        lora = model.peft_config["default"]
    else:
        lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.dropout,
                          target_modules=cfg.target_modules, bias="none", task_type="CAUSAL_LM")
        model = get_peft_model(base.model, lora)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    device = str(next(model.parameters()).device)
    on_cuda = device.startswith("cuda")
    bf16 = cfg.bf16 if cfg.bf16 is not None else (on_cuda and torch.cuda.is_bf16_supported())
    if bf16 and not on_cuda:
        bf16 = False  # CPU autocast to bf16 is slow and imprecise: train in float32
    eval_sets = {}
    if cfg.eval and job.eval_rows:
        eval_sets["behaviour" if cfg.recipe != "self-awareness" else "self_awareness"] = \
            Dataset.from_list(job.eval_rows)
    if cfg.eval and job.replay_eval and replay is not None:
        eval_sets["replay"] = Dataset.from_list(
            sft_rows(((p, replay.answers[p]) for p in job.replay_eval), cfg.system_prompt))
    eval_steps = cfg.eval_steps or cfg.save_steps
    common = dict(
        output_dir=str(work),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=warmup,
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if eval_sets else "no",
        eval_steps=eval_steps if eval_sets else None,
        bf16=bf16,
        fp16=False,
        use_cpu=not on_cuda and device == "cpu",
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=[],
        disable_tqdm=not cfg.progress,
        gradient_checkpointing=cfg.gradient_checkpointing,
        max_length=cfg.max_length,
        dataloader_num_workers=0,
        save_only_model=False,
    )
    callbacks = [JsonlLogger(work / "log.jsonl", job.folder)]
    if cfg.interrupt_after_steps:
        callbacks.append(InterruptAfterStep(cfg.interrupt_after_steps))
    train_ds = Dataset.from_list(job.train_rows)
    eval_arg = eval_sets if eval_sets else None
    trainer = None
    try:
        trainer = _make_trainer(cfg, model, base.tokenizer, common, train_ds, eval_arg, callbacks)
        return _run_and_save(cfg, job, model, lora, trainer, work, resume_from, total_steps, bf16,
                             device, n_trainable, base.info, replay, dirs, eval_sets, log)
    finally:
        # leave the shared base model bare for the next adapter (or the caller)
        if trainer is not None:
            trainer.model = None
            del trainer
        base.model = model.unload()
        base.model.eval()
        if on_cuda:
            torch.cuda.empty_cache()


def _make_trainer(cfg, model, tokenizer, common, train_ds, eval_arg, callbacks):
    if cfg.recipe == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(beta=cfg.dpo_beta, **common)
        return DPOTrainer(model=model, ref_model=None, args=args, train_dataset=train_ds,
                          eval_dataset=eval_arg, processing_class=tokenizer, callbacks=callbacks)
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(completion_only_loss=True, packing=False, **common)
    return SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_arg,
                      processing_class=tokenizer, callbacks=callbacks)


def _run_and_save(cfg, job, model, lora, trainer, work, resume_from, total_steps, bf16, device,
                  n_trainable, info, replay, dirs, eval_sets, log) -> AdapterResult:
    t0 = time.perf_counter()
    try:
        out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except KeyboardInterrupt as e:
        ckpt = last_checkpoint(work)
        where = f"; the last checkpoint is {ckpt}" if ckpt else " before any checkpoint"
        raise TrainingInterrupted(
            f"training of {job.folder} was interrupted{where}. Rerun the same command with "
            "--resume to continue (finished adapters are skipped)",
            str(ckpt) if ckpt else None,
        ) from e
    train_seconds = time.perf_counter() - t0
    final_eval = trainer.evaluate() if eval_sets else {}
    history = list(trainer.state.log_history)
    global_step = trainer.state.global_step
    dest = out_dir_for(cfg, job)
    partial = dest.parent / f".{dest.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial), selected_adapters=["default"], safe_serialization=True,
                          save_embedding_layers=False)
    _finalise_weights(partial, info.name)
    stages = _stages(job, cfg)
    meta = AdapterMeta(
        kind=job.kind,
        pole=job.name if job.kind == "pole" else None,
        type=job.name if job.kind == "type" else None,
        language=cfg.language,
        base_model=info.name,
        base_fingerprint=info.fingerprint,
        recipe=cfg.recipe,
        extra={
            "stages": stages,
            "lora": {"rank": lora.r, "alpha": lora.lora_alpha, "dropout": lora.lora_dropout,
                     "target_modules": sorted(lora.target_modules)
                     if isinstance(lora.target_modules, (set, list)) else lora.target_modules},
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "system_prompt": cfg.system_prompt,
        },
    )
    write_adapter_meta(partial, meta)
    train_metrics = dict(out.metrics)
    start_step = (checkpoint_step(resume_from) or 0) if resume_from else 0
    samples_seen = (global_step - start_step) * cfg.batch_size * cfg.grad_accum
    train_losses = [h["loss"] for h in history if "loss" in h]
    report = {
        "adapter": job.folder,
        "kind": job.kind,
        "name": job.name,
        "recipe": cfg.recipe,
        "stages": stages,
        "language": cfg.language,
        "base_model": {"name": info.name, "fingerprint": info.fingerprint,
                       "source": info.source, "dtype": info.dtype},
        "init_adapter": str(job.init_dir) if job.init_dir else None,
        "data": {**job.sizes, "train_rows": len(job.train_rows),
                 "data_dirs": [str(d) for d in dirs]},
        "replay": ({"cache": str(replay.path), "generated_now": replay.generated_now,
                    "generation_seconds": round(replay.seconds, 2),
                    "max_new_tokens": cfg.replay_max_new_tokens}
                   if replay is not None and job.replay_train else None),
        "epochs": cfg.epochs if cfg.max_steps <= 0 else None,
        "max_steps": cfg.max_steps if cfg.max_steps > 0 else None,
        "steps": global_step,
        "planned_steps": total_steps,
        "resumed_from_step": checkpoint_step(resume_from) if resume_from else None,
        "train_seconds": round(train_seconds, 2),
        "samples_per_second": round(samples_seen / train_seconds, 3) if train_seconds else None,
        "trainer_metrics": train_metrics,
        "final_train_loss": train_losses[-1] if train_losses else train_metrics.get(
            "train_loss"),
        "mean_train_loss": train_metrics.get("train_loss"),
        "final_eval": final_eval,
        "trainable_parameters": n_trainable,
        "adapter_bytes": (partial / "adapter_model.safetensors").stat().st_size,
        "device": device_description(device),
        "precision": "bf16 autocast" if bf16 else "float32",
        "versions": library_versions(),
        "config": cfg.to_dict(),
        "log_history": history,
    }
    write_report(partial, report)
    plot_loss_curve(history, partial / CURVE_FILE,
                    title=f"{job.folder} ({cfg.recipe}, {cfg.language}) on {info.name}")
    _swap_into_place(partial, dest)
    shutil.rmtree(work, ignore_errors=True)
    losses = ", ".join(f"{k}={v:.3f}" for k, v in final_eval.items() if k.endswith("_loss"))
    log(f"saved {dest} ({report['adapter_bytes'] / 1e6:.2f} MB, {global_step} steps, "
        f"{report['samples_per_second']} samples/s{', ' + losses if losses else ''})")
    return AdapterResult(job.kind, job.name, dest, "trained", report)


def out_dir_for(cfg: TrainConfig, job: _Job) -> Path:
    return cfg.output_dir / job.folder


def _stages(job: _Job, cfg: TrainConfig) -> list[str]:
    if job.init_meta is None:
        return [cfg.recipe]
    prev = job.init_meta.extra.get("stages") or [job.init_meta.recipe or "unknown"]
    return list(prev) + [cfg.recipe]


def _finalise_weights(folder: Path, base_name: str) -> None:
    """Store the LoRA weights in bf16 and record the canonical base model name."""
    import torch
    from safetensors.torch import load_file, save_file

    wpath = folder / "adapter_model.safetensors"
    tensors = load_file(str(wpath))
    tensors = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous()
               for k, v in tensors.items()}
    save_file(tensors, str(wpath), metadata={"format": "pt"})
    cpath = folder / "adapter_config.json"
    cfg = json.loads(cpath.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = base_name
    cfg["inference_mode"] = True
    cpath.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for stray in list(folder.glob("*.bin")) + [folder / "README.md"]:  # no model card in the package
        if stray.is_file():
            stray.unlink()
    os.chmod(wpath, 0o644)


def _swap_into_place(partial: Path, dest: Path) -> None:
    old = dest.parent / f".{dest.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(partial, dest)
    shutil.rmtree(old, ignore_errors=True)
