"""Tiny Llama/Qwen2-architecture models with a locally trained tokenizer, for CPU runs and tests.

    python -m lens.tiny --config STANDIN.yaml --out DIR     # a stand-in model (workflow rule `standin`)

Nothing here touches the network: the tokenizer is trained on the given texts in well under a
second and the model is randomly initialised from a config, then both are saved in Hugging Face
format so every other module loads them exactly like a hub checkpoint. With `family: llama3` or
`family: qwen2` the tokenizer has that family's special tokens, BOS handling and chat template,
so a stand-in takes the prompt path of the model it replaces (config/paper-rehearsal.yaml).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from lens.config import TinyModelConfig

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
# A minimal chat template (role markers on their own), so instruct-style prompts work on tiny models.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# Llama-3.1-Instruct's template without tools: BOS written by the template, a system header with
# the knowledge-cutoff lines, one header per turn, <|eot_id|> closing each turn.
LLAMA3_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\nToday Date: 26 Jul 2024\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
# Qwen2.5's template (its base model's tokenizer ships it too): no BOS, a default system turn.
QWEN2_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- set messages = messages[1:] %}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Per family: special tokens (in id order after the learned vocabulary's specials), which of them
# play BOS/EOS/pad, extra ids that also end generation, the chat template, and whether the
# tokenizer itself prepends BOS (Llama 3 does: TRL and evaluation rely on it).
FAMILIES = {
    "minimal": dict(special=SPECIAL_TOKENS, bos="<s>", eos="</s>", pad="<pad>", unk="<unk>", extra_eos=(),
                    template=CHAT_TEMPLATE, add_bos=False),
    "llama3": dict(special=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                            "<|eot_id|>", "<|finetune_right_pad_id|>"],
                   bos="<|begin_of_text|>", eos="<|eot_id|>", pad=None, unk=None, extra_eos=("<|end_of_text|>",),
                   template=LLAMA3_CHAT_TEMPLATE, add_bos=True),
    "qwen2": dict(special=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], bos=None, eos="<|endoftext|>",
                  pad="<|endoftext|>", unk=None, extra_eos=(), template=QWEN2_CHAT_TEMPLATE, add_bos=False),
}


def build_tokenizer(cfg: TinyModelConfig, texts: Iterable[str]):
    """A character-level (or byte-level BPE) tokenizer trained on `texts`, as PreTrainedTokenizerFast."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    fam = FAMILIES[cfg.family]
    special = list(fam["special"])
    texts = list(texts) + [fam["template"]]
    if cfg.tokenizer == "char":
        # Every printable ASCII character is in the vocabulary even if the corpus lacks it, so
        # prompts outside the training texts still tokenize without <unk>.
        chars = sorted({c for t in texts for c in t} | {chr(i) for i in range(32, 127)} | {"\n"})
        if fam["unk"] is None:
            special.append("<unk>")  # a word-level vocabulary needs one; the family does not name it
        vocab = {tok: i for i, tok in enumerate(special + chars)}
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tok.decoder = decoders.Fuse()
    else:
        # Byte-level: every string has a tokenization, so no <unk> is needed (as in Llama 3 and Qwen2).
        tok = Tokenizer(models.BPE(unk_token=fam["unk"]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=cfg.vocab_size,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
    if fam["add_bos"]:
        bos_id = tok.token_to_id(fam["bos"])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{fam['bos']} $A", pair=f"{fam['bos']} $A {fam['bos']} $B", special_tokens=[(fam["bos"], bos_id)])
    names = {key: fam[key] for key in ("bos", "eos", "pad", "unk") if fam[key] is not None}
    if cfg.tokenizer == "char":
        names["unk"] = "<unk>"
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        **{f"{key}_token": value for key, value in names.items()},
        additional_special_tokens=[t for t in fam["special"] if t not in names.values()],
        chat_template=fam["template"],
        padding_side="left",  # decoder-only generation pads on the left
    )


def build_model(cfg: TinyModelConfig, tokenizer, *, seed: int = 0):
    """A randomly initialised causal LM of the configured architecture, sized to `tokenizer`."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    config_cls = {"llama": LlamaConfig, "qwen2": Qwen2Config}[cfg.arch]
    model_config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(model_config)
    # As the real checkpoints: Llama-3.1-Instruct's generation config ends on <|eot_id|> and
    # <|end_of_text|> and has no pad token.
    extra = [tokenizer.convert_tokens_to_ids(t) for t in FAMILIES[cfg.family]["extra_eos"]]
    eos = [tokenizer.eos_token_id, *extra]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = eos if len(eos) > 1 else eos[0]
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def save_tiny(cfg: TinyModelConfig, texts: Iterable[str], out_dir: str | Path, *, seed: int = 0) -> Path:
    """Build tokenizer and model and save both under `out_dir` (loadable with from_pretrained)."""
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(cfg, texts)
    model = build_model(cfg, tokenizer, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir


# --------------------------------------------------------------------------------------------
# CLI: a stand-in model for the workflow (rule `standin`)
# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Build the stand-in of one model: tokenizer trained on the run's training problems, random weights.

    STANDIN.yaml holds `model` (a ModelConfig with `tiny` set), `corpus` (DatasetConfigs whose
    problems and answers train the tokenizer, at most `corpus_limit` of each) and `seed`.
    """
    import argparse
    import sys

    import yaml

    from lens.config import ConfigError, DatasetConfig, ModelConfig, parse
    from lens.data import DataError, load_problems

    parser = argparse.ArgumentParser(prog="python -m lens.tiny", description=main.__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML with `model`, `corpus`, `corpus_limit`, `seed`")
    parser.add_argument("--out", required=True, help="output directory (Hugging Face format)")
    args = parser.parse_args(argv)
    try:
        data = yaml.safe_load(Path(args.config).read_text()) or {}
        unknown = sorted(set(data) - {"model", "corpus", "corpus_limit", "seed"})
        if unknown:
            raise ConfigError(f"{args.config}: unknown key(s) {unknown}; "
                              "valid: ['corpus', 'corpus_limit', 'model', 'seed']")
        model = parse(ModelConfig, data.get("model"), source=args.config, key="model")
        if model.tiny is None:
            raise ConfigError(f"{args.config}: model.tiny: a stand-in is built from `tiny`; set it")
        limit = int(data.get("corpus_limit", 2000))
        texts = []
        for i, raw in enumerate(data.get("corpus") or []):
            ds = parse(DatasetConfig, raw, source=args.config, key=f"corpus[{i}]")
            for p in load_problems(ds, seed=0, training=True)[:limit]:
                texts += [p["problem"], str(p["answer"])]
    except (ConfigError, DataError, OSError) as err:
        print(f"lens.tiny: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_tiny(model.tiny, texts, tmp, seed=int(data.get("seed", 0)))
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    print(f"stand-in {model.name} ({model.tiny.arch}, {model.tiny.family}) written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
