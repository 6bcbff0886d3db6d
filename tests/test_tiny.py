"""lens.tiny: offline tokenizer + model that reload through the Hugging Face Auto classes."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lens.config import TinyModelConfig
from lens.tiny import save_tiny

TEXTS = ["What is $3 + 4$?", "$3 + 4 = 7$. \\boxed{7}"]


@pytest.mark.parametrize("arch,tokenizer", [("llama", "char"), ("qwen2", "bpe")])
def test_tiny_model_round_trips_offline(tmp_path, arch, tokenizer):
    cfg = TinyModelConfig(arch=arch, tokenizer=tokenizer, hidden_size=32, num_layers=1, num_heads=2,
                          intermediate_size=64, vocab_size=300)
    out = save_tiny(cfg, TEXTS, tmp_path / "m", seed=3)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == arch
    text = "Compute $12 \\times 3$: \\boxed{36}"
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text
    prompt = tok.apply_chat_template([{"role": "user", "content": "1+1?"}], tokenize=False,
                                     add_generation_prompt=True)
    assert prompt == "<|user|>1+1?\n<|assistant|>"
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tok))


def test_char_tokenizer_is_one_token_per_character(tmp_path):
    out = save_tiny(TinyModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32),
                    TEXTS, tmp_path / "c")
    tok = AutoTokenizer.from_pretrained(out)
    assert len(tok("\\boxed{7}")["input_ids"]) == len("\\boxed{7}")
    assert tok.padding_side == "left"


def test_same_seed_same_weights(tmp_path):
    cfg = TinyModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    a = AutoModelForCausalLM.from_pretrained(save_tiny(cfg, TEXTS, tmp_path / "a", seed=1))
    b = AutoModelForCausalLM.from_pretrained(save_tiny(cfg, TEXTS, tmp_path / "b", seed=1))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
