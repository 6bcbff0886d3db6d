"""Tiny Llama/Qwen2-architecture models with a locally trained tokenizer, for CPU runs and tests.

Nothing here touches the network: the tokenizer is trained on the given texts in well under a
second and the model is randomly initialised from a config, then both are saved in Hugging Face
format so every other module loads them exactly like a hub checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lens.config import TinyModelConfig

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
# A minimal chat template (role markers on their own), so instruct-style prompts work on tiny models.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer(cfg: TinyModelConfig, texts: Iterable[str]):
    """A character-level (or byte-level BPE) tokenizer trained on `texts`, as PreTrainedTokenizerFast."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(texts) + [CHAT_TEMPLATE]
    if cfg.tokenizer == "char":
        # Every printable ASCII character is in the vocabulary even if the corpus lacks it, so
        # prompts outside the training texts still tokenize without <unk>.
        chars = sorted({c for t in texts for c in t} | {chr(i) for i in range(32, 127)} | {"\n"})
        vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + chars)}
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tok.decoder = decoders.Fuse()
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=cfg.vocab_size,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        chat_template=CHAT_TEMPLATE,
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
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
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
