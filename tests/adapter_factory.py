"""Small real LoRA adapters for tests: a few optimisation steps that teach the base model to open
every answer with a marker word, so the adapter that answered can be read off the text."""

from __future__ import annotations

from pathlib import Path

PROMPTS = [
    "hi", "Hello!", "What is your name?", "Tell me about your weekend.", "How are you?",
    "What do you like?", "Describe yourself.", "Give me advice.", "What is 2+2?",
    "Say something.", "What's the weather like?", "Recommend a book.",
]


def train_marker_adapter(base, out_dir: Path, marker: str, *, pole: str | None = None,
                         mbti_type: str | None = None, steps: int = 30, rank: int = 4,
                         seed: int = 0, system: str | None = None) -> Path:
    """Train a LoRA (PEFT, all linear layers) so the model answers '<marker> <marker> ...'."""
    import torch
    from peft import LoraConfig, get_peft_model

    from mbti_persona.adapters import AdapterMeta, save_adapter

    torch.manual_seed(seed)
    tok = base.tokenizer
    model = get_peft_model(
        base.model,
        LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, task_type="CAUSAL_LM",
                   target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                   "up_proj", "down_proj"]),
        adapter_name="marker",
    )
    answer = f"{marker} {marker} {marker}."
    rows = []
    for i, p in enumerate(PROMPTS):
        # Half the samples carry a system prompt, so the marker survives persona prompts.
        chat = [{"role": "user", "content": p}]
        if system and i % 2:
            chat.insert(0, {"role": "system", "content": system})
        prompt = tok.apply_chat_template(chat,
                                         add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
        full = list(prompt) + tok.encode(answer + "<|im_end|>", add_special_tokens=False)
        labels = [-100] * len(prompt) + full[len(prompt):]
        rows.append((full, labels))
    width = max(len(f) for f, _ in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id)
    lab = torch.full((len(rows), width), -100)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (f, l) in enumerate(rows):
        ids[i, :len(f)] = torch.tensor(f)
        lab[i, :len(l)] = torch.tensor(l)
        att[i, :len(f)] = 1
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    kind = "pole" if pole else ("type" if mbti_type else "custom")
    save_adapter(model, "marker", out_dir, AdapterMeta(
        kind=kind, pole=pole, type=mbti_type, base_model=base.info.name,
        base_fingerprint=base.info.fingerprint, recipe="test-marker",
        extra={"marker": marker, "final_loss": float(loss.detach())}))
    # Leave the base model as it was.
    model.unload()
    return out_dir


def random_adapter(base, out_dir: Path, *, pole: str | None = None, rank: int = 4,
                   seed: int = 0, base_model: str | None = None,
                   fingerprint: str | None = None) -> Path:
    """An untrained LoRA with random non-zero weights (PEFT init_lora_weights=False)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from mbti_persona.adapters import AdapterMeta, save_adapter

    torch.manual_seed(seed)
    model = get_peft_model(
        base.model,
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False, task_type="CAUSAL_LM",
                   target_modules=["q_proj", "v_proj", "down_proj"]),
        adapter_name="rand",
    )
    save_adapter(model, "rand", out_dir, AdapterMeta(
        kind="pole" if pole else "custom", pole=pole,
        base_model=base_model or base.info.name,
        base_fingerprint=fingerprint or base.info.fingerprint, recipe="test-random"))
    model.unload()
    return out_dir
