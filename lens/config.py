"""The project's only config parser: frozen dataclasses built from YAML, unknown keys are errors.

Two shapes share these dataclasses:
- a *run* config (``RunConfig``): one model x algorithm x seed, fully resolved; this is the file
  ``python -m lens.train --config FILE`` and ``python -m lens.evaluate --config FILE`` read;
- a *workflow* config (``WorkflowConfig``): ``config/config.yaml`` or ``config/paper.yaml``, with
  lists of models, algorithms and seeds; ``WorkflowConfig.resolve(model, algo, seed)`` merges the
  shared sections, the model's overrides and the algorithm into a ``RunConfig``.

Every error names the offending key and the file it came from (a misspelt key, the nearest valid
one too), so a typo fails at ``snakemake -n`` before any compute starts. Types are checked by
``parse`` from the fields' annotations; each section's rules (bounds, keys that must agree) are its
own ``validate`` method, which ``parse`` calls once the section is built; an advantage parameter's
doc, default and bounds sit on its field of ``AlgorithmConfig``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import urlparse

import yaml

from lens import algorithms, datasets

# Algorithm ids and the LENS family (the ids whose advantages read the confidence), from the one
# table of algorithms, lens.algorithms.ALGORITHMS.
ALGORITHMS = algorithms.ALGORITHMS  # the live table: an algorithm registered at run time is valid too
LENS_FAMILY = algorithms.reading_confidence()
# Dataset names, from the one table of datasets, lens.datasets.DATASETS.
DATASETS = datasets.names()


class ConfigError(ValueError):
    """A config value is missing, unknown or of the wrong type; the message names key and file."""


class Invalid(Exception):
    """A value breaks a rule of its section (raised by the section's `validate`); parse() names the file."""

    def __init__(self, key: str, why: str):
        super().__init__(f"{key}: {why}")
        self.key, self.why = key, why


def _fail(key: str, why: str) -> None:
    raise Invalid(key, why)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TinyModelConfig:
    """A small Llama/Qwen2-architecture model built from scratch, with a locally trained tokenizer."""

    arch: Literal["llama", "qwen2"] = "llama"
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    max_position_embeddings: int = 256
    tokenizer: Literal["char", "bpe"] = "char"
    vocab_size: int = 512  # only for tokenizer: bpe
    # Special tokens, BOS handling and chat template of a real model family, so that a stand-in
    # takes the same prompt path as the model it replaces (config/paper-rehearsal.yaml):
    # minimal: <s>/</s>, no BOS added, a role-marker template (the embedded model);
    # llama3: Llama-3.1-Instruct's header tokens, <|eot_id|> ends a turn, the tokenizer adds BOS
    #         and the chat template writes it too, no pad token;
    # qwen2: Qwen2.5's <|im_start|>/<|im_end|> template, no BOS, <|endoftext|> is EOS and pad.
    family: Literal["minimal", "llama3", "qwen2"] = "minimal"


@dataclass(frozen=True)
class ModelConfig:
    name: str  # short id used in result paths, MLflow tags and figure labels (analysis/style.py)
    path: str | None = None  # hub id or local directory; None: build `tiny` from scratch
    # chat: tokenizer's chat template; plain: base-model prompt; bare: the problem text alone, for
    # tiny models trained from scratch (an instruction means nothing to them and would triple
    # the tokens a CPU run spends on every prompt)
    prompt: Literal["chat", "plain", "bare"] = "chat"
    tiny: TinyModelConfig | None = None
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU

    def validate(self, source: str) -> None:
        if self.path is None and self.tiny is None:
            _fail("model", "set `path` (hub id or local directory) or `tiny` (a model built from scratch)")


def param(default: Any, doc: str, valid: Callable[[Any], bool] | None = None, rule: str = "") -> Any:
    """An advantage parameter, a field of AlgorithmConfig: its default, its meaning, and its bounds: a value
    for which `valid` is False is refused with `rule` (AlgorithmConfig.validate)."""
    return field(default=default, metadata={"doc": doc, "valid": valid, "rule": rule})


@dataclass(frozen=True)
class AlgorithmConfig:
    """The algorithm of a run: its id and every advantage parameter. An algorithm reads its own only
    (lens.algorithms.read_params: its advantage function's keywords, its clipping pair, its sampling cap);
    a resolved run config resets the others to their defaults, which equal the advantage functions' keyword
    defaults (tests/test_algorithms.py)."""

    name: str = "grpo"  # an id of lens.algorithms.ALGORITHMS
    alpha: float = param(0.25, "LENS: scale of negative-group advantages")
    wrong_scale: float = param(1.0, "LENS: a wrong answer's calibrated reward is -wrong_scale (1/G) p/(D - p); "
                                    "1 = the paper's 1/G", lambda v: v >= 0, "must be >= 0")
    floor_factor: float = param(2.0, "LENS: floor of the normaliser, D >= floor_factor max_i p_i (the paper's 2); "
                                     "must be > 1 so that D - p > 0",
                                lambda v: v > 1, "must be > 1 (D >= floor_factor max p keeps D - p > 0)")
    negative_norm: Literal["demean", "standardize"] = param(
        "demean", "LENS: all-wrong groups' r^ is de-meaned (the paper) or standardised, then scaled by alpha")
    eps: float = param(1e-6, "added to the group std")
    std: Literal["sample", "population"] = param("sample", "sample: Bessel-corrected group std, as in VeRL")
    wr_lambda: float = param(0.1, "W-REINFORCE: advantage of a correct answer")
    clip_low: float = param(0.16, "NGRPO: lower clip epsilon, ratio >= 1 - clip_low (binds on negative advantages)",
                            lambda v: 0 <= v < 1, "must be in [0, 1)")
    clip_high: float = param(0.24, "NGRPO: upper clip epsilon, ratio <= 1 + clip_high (binds on positive advantages)",
                             lambda v: 0 <= v < 1, "must be in [0, 1)")
    shuffle_frac: float = param(1.0, "grpo_shuffled: share q of groups whose advantages are shuffled, each group "
                                     "independently; the others keep GRPO's (1: every group, a control that must "
                                     "lose; smaller q: a graded effect)",
                                lambda v: 0 <= v <= 1, "must be in [0, 1] (the share of groups whose advantages "
                                                       "are shuffled)")
    max_gen_batches: int = param(3, "grpo_dynamic: generation batches of B prompts a rollout may take, the first "
                                    "included (verl's max_num_gen_batches); at the cap it trains on the informative "
                                    "groups found (lens.dynamic)",
                                 lambda v: v >= 1, "must be >= 1 (generation batches per rollout, the first included)")

    def params(self) -> dict[str, Any]:
        """This algorithm's own parameters (its advantage function's keywords) and their values."""
        return {key: getattr(self, key) for key in algorithms.get(self.name).params}

    def validate(self, source: str) -> None:
        if self.name not in ALGORITHMS:
            _fail("algorithm.name", unknown_name("algorithm", self.name, ALGORITHMS))
        for key, spec in PARAMS.items():
            if spec.valid is not None and not spec.valid(getattr(self, key)):
                _fail(f"algorithm.{key}", spec.rule)


@dataclass(frozen=True)
class Param:
    """An advantage parameter as the rest of the suite reads it: AlgorithmConfig's field, typed."""

    type: Any
    default: Any
    doc: str
    valid: Callable[[Any], bool] | None
    rule: str


# Every advantage parameter (AlgorithmConfig's fields but `name`), in field order.
PARAMS: dict[str, Param] = {
    f.name: Param(typing.get_type_hints(AlgorithmConfig)[f.name], f.default, **f.metadata)
    for f in dataclasses.fields(AlgorithmConfig) if f.name != "name"
}


@dataclass(frozen=True)
class DatasetConfig:
    name: str  # one of DATASETS: decides how records are mapped onto the problem schema
    path: str  # local file/directory or hub dataset id
    split: str = "test"
    # Deterministic subset of this many problems: drawn with the run seed for training sets, with
    # one fixed seed for evaluation sets (every run is evaluated on the same problems).
    limit: int | None = None
    levels: tuple[int, ...] | None = None  # keep only these difficulty levels
    # Deterministic subset of at most this many problems per (level, subject) cell: a small
    # subset that still has every level and subject (applied before `limit`).
    limit_per_level_subject: int | None = None
    # Samples per problem of this evaluation set at every step it is evaluated (AIME's avg@32); None:
    # evaluation.n_samples (and intermediate_n_samples between the first and last step).
    n_samples: int | None = None

    @property
    def id(self) -> str:
        """The `benchmark` value in result tables: `math500`, `math_test`, `synthetic_test`, ..."""
        return self.name if self.name == "math500" else f"{self.name}_{self.split}"

    def validate(self, source: str) -> None:
        if self.name not in DATASETS:
            _fail("name", unknown_name("dataset", self.name, DATASETS))
        for key in ("limit", "limit_per_level_subject", "n_samples"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                _fail(key, "must be >= 1 (or null for no limit)")


@dataclass(frozen=True)
class DataConfig:
    train: tuple[DatasetConfig, ...] = ()
    # Drop training problems whose normalised text equals an evaluation problem's.
    decontaminate: bool = True


@dataclass(frozen=True)
class TrainingConfig:
    # The paper's batch arithmetic (the paper's Appendix D.1); lens.train derives TRL's per-device batch,
    # gradient accumulation and steps_per_generation from it and the number of processes.
    prompts_per_rollout: int = 128
    num_generations: int = 16
    updates_per_rollout: int = 4
    prompts_per_update: int = 32
    rollout_steps: int = 1600
    learning_rate: float = 1e-6
    # constant (the paper's engine, VeRL, by default) or decaying to 0 over the run (linear, cosine)
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    weight_decay: float = 0.0
    clip_eps: float = 0.2
    kl_beta: float = 0.0
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 4096
    max_prompt_tokens: int = 1024
    save_every: int = 100  # rollout steps between Hugging Face checkpoints
    # Rollout steps between rollout records (one row per sampled completion in the run's rollouts.parquet)
    rollout_records_every: int = 1
    engine: Literal["transformers", "vllm"] = "transformers"
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    vllm_server_base_url: str | None = None  # vllm_mode server: e.g. http://node07:8000; None: localhost:8000
    # TRL's truncated importance-sampling correction of vLLM's sampling mismatch (on by default in
    # TRL 1.16): a sequence-level reweighting that is not in the paper's Eq. 3, so off unless asked.
    vllm_importance_sampling_correction: bool = False
    # Whose log-probs give LENS's confidence p: the trainer's recomputed pi_old (TRL's old log-probs,
    # as VeRL recomputes them) with vLLM's sampling log-probs only where TRL has none, or vLLM's first.
    confidence_from: Literal["trainer", "sampling"] = "trainer"
    gradient_checkpointing: bool = False
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    torch_threads: int | None = None  # CPU threads per job; None leaves torch's default
    # Completions per process per forward/backward pass; None: a whole update per process (no
    # gradient accumulation). lens.train derives gradient accumulation from it; memory only.
    micro_batch_size: int | None = None

    def validate(self, source: str) -> None:
        for key in ("prompts_per_rollout", "num_generations", "updates_per_rollout", "prompts_per_update",
                    "rollout_steps", "max_new_tokens", "save_every", "rollout_records_every"):
            if getattr(self, key) < 1:
                _fail(f"training.{key}", "must be >= 1")
        if self.num_generations < 2:
            _fail("training.num_generations", "group advantages need at least 2 samples per prompt")
        if self.prompts_per_update * self.updates_per_rollout != self.prompts_per_rollout:
            _fail("training", f"prompts_per_update ({self.prompts_per_update}) x updates_per_rollout "
                  f"({self.updates_per_rollout}) must equal prompts_per_rollout ({self.prompts_per_rollout})")
        if not 0 < self.top_p <= 1:
            _fail("training.top_p", "must be in (0, 1]")


@dataclass(frozen=True)
class EvaluationConfig:
    benchmarks: tuple[DatasetConfig, ...] = ()  # evaluated at step 0 and every `every` steps
    final_benchmarks: tuple[DatasetConfig, ...] = ()  # evaluated at the final step only (costly sets)
    n_samples: int = 16
    # Samples per problem at the steps before the last (step 0 and the final step keep n_samples,
    # for Pass@k): cheaper points on the training curves. None: n_samples at every step.
    intermediate_n_samples: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 4096
    engine: Literal["transformers", "vllm"] = "transformers"
    batch_size: int = 32  # prompts per generate call
    grade_timeout_s: float = 5.0
    every: int = 100  # evaluate the checkpoint of every `every` rollout steps (and step 0)
    pass_k: tuple[int, ...] = (1, 2, 4, 8, 16)
    torch_threads: int | None = None

    def validate(self, source: str) -> None:
        if self.n_samples < 1:
            _fail("evaluation.n_samples", "must be >= 1")
        if self.intermediate_n_samples is not None and not 1 <= self.intermediate_n_samples <= self.n_samples:
            _fail("evaluation.intermediate_n_samples", f"must be in 1..n_samples ({self.n_samples}) or null")
        bad = [k for k in self.pass_k if not 1 <= k <= self.n_samples]
        if bad:
            _fail("evaluation.pass_k", f"{bad} outside 1..n_samples ({self.n_samples})")


@dataclass(frozen=True)
class TrackingConfig:
    uri: str | None = None  # None: a SQLite store under the results folder
    experiment: str = "lens"
    # Tracking-server mode: with `uri: http://HOST:PORT`, the workflow runs `mlflow server` there for
    # its duration with this backend store (sqlite:///PATH on the submitting host's local disk, or
    # postgresql://...); artifacts go to <results_dir>/mlartifacts. None: no server is started.
    server_store: str | None = None

    def validate(self, source: str) -> None:
        if self.server_store is not None:
            uri = urlparse(self.uri or "")
            if uri.scheme != "http" or not uri.hostname or not uri.port:
                _fail("tracking.server_store", "the workflow starts `mlflow server` at tracking.uri, which must "
                      f"then be http://HOST:PORT (got {self.uri!r})")


@dataclass(frozen=True)
class RunConfig:
    """Everything one training/evaluation job needs; written once per run by the workflow."""

    model: ModelConfig
    algorithm: AlgorithmConfig
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def validate(self, source: str) -> None:
        if algorithms.get(self.algorithm.name).drop_filtered and self.training.kl_beta:
            # lens.trainer leaves filtered groups out of the loss mean by rescaling advantages; a KL term would stay.
            _fail("training.kl_beta", f"must be 0 for {self.algorithm.name} (its filtered groups leave the loss mean)")

    # The evaluation schedule (which checkpoints the workflow evaluates, on what, with how many samples)
    def eval_steps(self) -> list[int]:
        """Rollout steps > 0 whose checkpoints are evaluated: every `evaluation.every` steps and the last."""
        last, every = self.training.rollout_steps, self.evaluation.every
        return sorted({*range(every, last + 1, every), last})

    def benchmarks_at(self, step: int) -> list[DatasetConfig]:
        """Benchmarks evaluated at `step`: the curve sets always, the costly final sets at the last step."""
        final = self.evaluation.final_benchmarks if step == self.training.rollout_steps else ()
        return list({ds.id: ds for ds in (*self.evaluation.benchmarks, *final)}.values())

    def n_samples_at(self, step: int) -> int:
        """Samples per problem at `step`: n_samples at step 0 and the last step (Pass@k), else
        evaluation.intermediate_n_samples when it is set."""
        ev = self.evaluation
        if step in (0, self.training.rollout_steps) or ev.intermediate_n_samples is None:
            return ev.n_samples
        return ev.intermediate_n_samples


# Workflow-only sections --------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticConfig:
    """The embedded levelled arithmetic benchmark (lens.synthetic)."""

    train_per_level: int = 2000
    test_per_level: int = 100
    seed: int = 1234
    # RL prompt set (rl.jsonl): this many train problems of Levels 1..5, to lean toward hard levels.
    rl_per_level: tuple[int, ...] = (50, 100, 200, 400, 400)
    # More test problems of Levels 1..5 from the problems no training split uses (drawn after train):
    # evaluation power where it is needed without changing the warm-up or RL sets.
    extra_test_per_level: tuple[int, ...] = (0, 0, 0, 0, 0)


@dataclass(frozen=True)
class WarmupConfig:
    """Supervised warm-up of the tiny model on worked solutions: the shared RL starting point."""

    steps: int = 800
    batch_size: int = 32
    learning_rate: float = 1e-3
    torch_threads: int | None = None
    # Relative sampling weight of Levels 1..5 in the warm-up batches (decides the start's accuracy by level).
    level_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    warmup_steps: int = 50  # linear learning-rate warm-up, then cosine decay to 10 %
    seed: int = 0  # model initialisation and batch order


@dataclass(frozen=True)
class FiguresConfig:
    """Figure settings; only the figure rules read them, so changing one reruns only figures."""

    formats: tuple[str, ...] = ("png", "pdf")
    dpi: int = 200
    bootstrap_samples: int = 2000
    smoothing_window: int = 5


@dataclass(frozen=True)
class SweepConfig:
    """One sensitivity sweep (target `sweeps`): `algorithm` trained once per value of `parameter`."""

    algorithm: str  # an id of lens.algorithms.ALGORITHMS
    parameter: str  # one of the parameters that algorithm reads (lens.algorithms), e.g. alpha
    values: tuple[Any, ...]  # each parsed with the parameter's type (PARAMS)


@dataclass(frozen=True)
class ModelEntry:
    """One entry of the workflow's `models:` mapping: the model plus per-model overrides.

    `kind` says where a run's model comes from, and so which jobs build it:
      hub      `model.path`, a hub id or a local directory in the same format (the paper's models)
      tiny     built from `model.tiny` and warmed up on the synthetic benchmark (the embedded run;
               needs the `warmup` and `synthetic` sections)
      standin  built from `model.tiny` with random weights, standing in for a hub model of its
               architecture family (config/paper-rehearsal.yaml)
    """

    model: dict[str, Any]  # ModelConfig fields except `name` (the mapping key)
    kind: Literal["hub", "tiny", "standin"] = "hub"
    training: dict[str, Any] = field(default_factory=dict)  # partial TrainingConfig
    evaluation: dict[str, Any] = field(default_factory=dict)  # partial EvaluationConfig
    # GPUs of one training job (one node): >1 launches lens.train under `accelerate launch` with
    # `accelerate_config`, one process per GPU. None: 1 for hub models, 0 (the CPU) for built ones.
    # Evaluation jobs take one GPU (none on the CPU).
    gpus: int | None = None
    accelerate_config: str = "config/accelerate/zero3.yaml"
    # Processes of one training job. None: one per GPU, or 1 on the CPU. On the CPU (gpus 0) more
    # than one start under torch's own launcher (torchrun, gloo): accelerate's --cpu starts one.
    processes: int | None = None

    def training_gpus(self) -> int:
        if self.gpus is not None:
            return self.gpus
        return 1 if self.kind == "hub" else 0

    def training_processes(self) -> int:
        if self.processes is not None:
            return self.processes
        return max(self.training_gpus(), 1)


@dataclass(frozen=True)
class WorkflowConfig:
    models: dict[str, ModelEntry]
    algorithms: tuple[str, ...]
    seeds: tuple[int, ...]
    results_dir: str = "results"
    algorithm: dict[str, Any] = field(default_factory=dict)  # AlgorithmConfig fields except name
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    synthetic: SyntheticConfig | None = None
    warmup: WarmupConfig | None = None
    figures: FiguresConfig = field(default_factory=FiguresConfig)
    ablation_algorithms: tuple[str, ...] = ()  # optional target `ablations`
    # The models and seeds the `ablations` target trains its extra arms on (empty: every model, every
    # seed); its tables compare them with the main arms' runs of those models and seeds only.
    ablation_models: tuple[str, ...] = ()
    ablation_seeds: tuple[int, ...] = ()
    sweeps: tuple[SweepConfig, ...] = ()  # optional target `sweeps`

    def resolve(self, model: str, algo: str, seed: int, *, source: str = "<workflow>",
                params: dict[str, Any] | None = None) -> RunConfig:
        """Merge shared sections, the model's overrides and the algorithm into one RunConfig.

        Algorithm parameters an algorithm does not use are reset to their defaults, so that
        changing, say, alpha changes only the LENS-family run configs (and reruns only those).
        `params` override the `algorithm:` section (a sweep run's value).
        """
        if model not in self.models:
            raise ConfigError(f"{source}: {unknown_name('model', model, sorted(self.models))}")
        if algo not in ALGORITHMS:
            raise ConfigError(f"{source}: {unknown_name('algorithm', algo, ALGORITHMS)}")
        entry = self.models[model]
        algo_params = {**self.algorithm, **(params or {}), "name": algo}
        defaults = AlgorithmConfig()
        used = algorithms.read_params(algo)
        for key in PARAMS:
            if key not in used:
                algo_params[key] = getattr(defaults, key)
        raw = {
            "model": {**entry.model, "name": model},
            "algorithm": algo_params,
            "seed": seed,
            "data": to_dict(self.data),
            "training": _merge(to_dict(self.training), entry.training),
            "evaluation": _merge(to_dict(self.evaluation), entry.evaluation),
            "tracking": to_dict(self.tracking),
        }
        return parse(RunConfig, raw, source=f"{source} (models.{model})")

    def ablation_runs(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """(models, seeds) of the `ablations` target: `ablation_models` and `ablation_seeds`, or all."""
        return self.ablation_models or tuple(self.models), self.ablation_seeds or self.seeds

    def ablation_arms(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(arm, algorithm, {parameter: value}) of every `ablation_algorithms` entry written as an arm,
        `{algo}/{param}-{value}` (e.g. `grpo_shuffled/shuffle_frac-0.25`: the graded control), in config order.
        Its runs live where a sweep value's do (results/runs/{model}/{algo}/{param}-{value}/seed{s})."""
        out = []
        for entry in self.ablation_algorithms:
            parsed = parse_sweep_arm(entry)
            if parsed is not None:
                algo, param, value_id = parsed
                out.append((entry, algo, {param: _coerce(PARAMS[param].type, value_id, "<workflow>",
                                                         param)}))
        return out

    def sweep_variants(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(arm, algorithm, {parameter: value}) of every swept value, in config order; arm is
        `{algo}/{param}-{value}` (`sweep_arm`), the run's folder below results/runs/{model}/."""
        out = []
        for sweep in self.sweeps:
            param = PARAMS[sweep.parameter]
            for v in sweep.values:
                value = _coerce(param.type, v, "<workflow>", sweep.parameter)
                out.append((sweep_arm(sweep.algorithm, sweep.parameter, value), sweep.algorithm,
                            {sweep.parameter: value}))
        return out

    def validate(self, source: str) -> None:
        """The rules between a workflow config's sections: its ids, arms, models, seeds, sweeps and evaluation
        schedule; every run it asks for is resolved once, which validates each model's overrides."""
        unknown = [a for a in self.algorithms if a not in ALGORITHMS]
        if unknown:
            _fail("algorithms", f"unknown algorithm(s) {unknown}; valid: {list(ALGORITHMS)}")
        unknown = [a for a in self.ablation_algorithms if a not in ALGORITHMS and parse_sweep_arm(a) is None]
        if unknown:
            _fail("ablation_algorithms", f"unknown algorithm(s) {unknown}; valid: {list(ALGORITHMS)}, or an arm "
                  "`{algorithm}/{parameter}-{value}` (e.g. grpo_shuffled/shuffle_frac-0.25)")
        for arm, algo, params in self.ablation_arms():
            (param, value), = params.items()
            if param not in algorithms.read_params(algo):
                _fail("ablation_algorithms", f"{arm}: {algo} does not read {param!r}; it reads "
                      f"{list(algorithms.read_params(algo))}")
            if sweep_arm(algo, param, value) != arm:
                _fail("ablation_algorithms", f"{arm}: write the value as {sweep_arm(algo, param, value)!r}")
            for name in self.models:
                self.resolve(name, algo, self.seeds[0], source=f"{source}: ablation_algorithms: {arm}", params=params)
        if not self.models:
            _fail("models", "at least one model is required")
        if not self.seeds:
            _fail("seeds", "at least one seed is required")
        unknown = [m for m in self.ablation_models if m not in self.models]
        if unknown:
            _fail("ablation_models", f"unknown model(s) {unknown}; configured: {sorted(self.models)}")
        unknown = [s for s in self.ablation_seeds if s not in self.seeds]
        if unknown:
            _fail("ablation_seeds", f"{unknown} not in seeds {list(self.seeds)}: each arm is compared with the "
                  "main arms' runs of the same seed")
        for name, entry in self.models.items():
            if entry.gpus is not None and entry.gpus < 0:
                _fail(f"models.{name}.gpus", "must be >= 0")
            if entry.processes is not None and entry.processes < 1:
                _fail(f"models.{name}.processes", "must be >= 1")
            if entry.processes is not None and entry.training_gpus() and entry.processes != entry.training_gpus():
                _fail(f"models.{name}.processes", f"is {entry.processes} but a GPU job runs one process per GPU "
                      f"(gpus: {entry.training_gpus()}); set processes only for CPU jobs (gpus: 0)")
            has_tiny, has_path = entry.model.get("tiny") is not None, entry.model.get("path") is not None
            if entry.kind == "hub" and (has_tiny or not has_path):
                _fail(f"models.{name}.model", "a hub model (kind: hub, the default) needs `path` (a hub id or a "
                      "local directory) and no `tiny`; a model built here is kind tiny or standin")
            if entry.kind != "hub" and (has_path or not has_tiny):
                _fail(f"models.{name}.model", f"kind {entry.kind} builds the model from `tiny`: set `tiny` and "
                      "leave `path` unset")
            if entry.kind == "tiny" and (self.warmup is None or self.synthetic is None):
                _fail(f"models.{name}.kind", "tiny models are warmed up: they need the `warmup` and `synthetic` "
                      "sections")
            if entry.training_gpus() > 1 and not Path(entry.accelerate_config).is_file():
                _fail(f"models.{name}.accelerate_config", f"{entry.accelerate_config!r} is not a file (needed to "
                      f"launch {entry.training_gpus()} training processes)")
            for algo in (*self.algorithms, *(a for a in self.ablation_algorithms if a in ALGORITHMS)):
                run = self.resolve(name, algo, self.seeds[0], source=source)  # validates every override
                _check_synthetic_paths(self, run, f"models.{name}", _fail)
                _check_eval_schedule(run, _fail)
        _check_sweeps(self, source, _fail)


# Sweep runs live at results/runs/{model}/{algo}/{param}-{value}/seed{seed}: one folder per value
# below the algorithm's main runs ({algo}/seed{seed}), so the two never share a directory, and the
# main runs' tidy tables (analysis.collect: {model}/{algo}/seed{seed}) never include a sweep run.
_VALUE_ID = re.compile(r"[A-Za-z0-9_.+-]+")


def sweep_value_id(value: Any) -> str:
    """A parsed parameter value as a folder name: 4.0 -> "4", 0.25 -> "0.25", True -> "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)  # the shortest text that reads back as the same float: distinct values stay distinct
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def sweep_arm(algo: str, param: str, value: Any) -> str:
    """`lens/alpha-4`: a sweep run's path below results/runs/{model}/ and its `algo` in the sweep tidy tables."""
    return f"{algo}/{param}-{sweep_value_id(value)}"


def parse_sweep_arm(arm: str) -> tuple[str, str, str] | None:
    """(algo, param, value id) of a `sweep_arm`, or None for anything else (a main run's algorithm id)."""
    algo, sep, variant = arm.partition("/")
    param, dash, value = variant.partition("-")
    if not (sep and dash and value) or algo not in ALGORITHMS or param not in PARAMS:
        return None
    return (algo, param, value) if _VALUE_ID.fullmatch(value) else None


# --------------------------------------------------------------------------------------------
# Validation beyond types
# --------------------------------------------------------------------------------------------
def _check_sweeps(cfg: WorkflowConfig, source: str, fail) -> None:
    """Each sweep names an algorithm, a parameter it reads and a non-empty list of distinct values of
    that parameter's type; every swept run config resolves for every model."""
    arms: dict[str, str] = {}
    for i, sweep in enumerate(cfg.sweeps):
        key = f"sweeps[{i}]"
        if sweep.algorithm not in ALGORITHMS:
            fail(f"{key}.algorithm", unknown_name("algorithm", sweep.algorithm, ALGORITHMS))
        reads = algorithms.read_params(sweep.algorithm)
        if sweep.parameter not in reads:
            fail(f"{key}.parameter", f"{sweep.algorithm} does not read {sweep.parameter!r} (every value would "
                 f"train the same run); it reads {list(reads)}")
        if not sweep.values:
            fail(f"{key}.values", "at least one value is required")
        for j, raw in enumerate(sweep.values):
            value_key = f"{key}.values[{j}]"
            value = _coerce(PARAMS[sweep.parameter].type, raw, source, value_key)
            if not _VALUE_ID.fullmatch(sweep_value_id(value)):
                fail(value_key, f"{value!r} cannot name a run folder (letters, digits, _ . + - only)")
            arm = sweep_arm(sweep.algorithm, sweep.parameter, value)
            if arm in arms:
                fail(value_key, f"{raw!r} repeats {arms[arm]} (the same run {arm!r})")
            arms[arm] = value_key
            for name in cfg.models:
                cfg.resolve(name, sweep.algorithm, cfg.seeds[0], source=f"{source}: {value_key}",
                            params={sweep.parameter: value})
    if arms and "grpo" not in cfg.algorithms:
        fail("sweeps", "every swept value is compared with the main GRPO runs: `algorithms` must list grpo")


def _check_eval_schedule(run: RunConfig, fail) -> None:
    """The workflow evaluates saved checkpoints only: every evaluated step has one."""
    t, every = run.training, run.evaluation.every
    if every < 1:
        fail("evaluation.every", "must be >= 1")
    if any(step % t.save_every and step != t.rollout_steps for step in run.eval_steps()):
        fail("evaluation.every", f"{every} evaluates steps without a checkpoint: it must be a multiple of "
             f"training.save_every ({t.save_every})")


def _check_synthetic_paths(cfg: WorkflowConfig, run: RunConfig, where: str, fail) -> None:
    """The synthetic benchmark is generated in results_dir/data/synthetic (its one location)."""
    sets = [("data.train", run.data.train), ("evaluation.benchmarks", run.evaluation.benchmarks),
            ("evaluation.final_benchmarks", run.evaluation.final_benchmarks)]
    for key, entries in sets:
        for i, ds in enumerate(entries):
            if ds.name != "synthetic":
                continue
            if cfg.synthetic is None:
                fail(f"{key}[{i}]", "a synthetic dataset needs the `synthetic` section (the generator's settings)")
            expected = f"{cfg.results_dir.rstrip('/')}/data/synthetic"
            if (ds.path or "").rstrip("/") != expected:
                fail(f"{key}[{i}].path", f"the synthetic benchmark is generated in {expected!r} (results_dir + "
                     f"/data/synthetic); got {ds.path!r} ({where})")


# --------------------------------------------------------------------------------------------
# Generic dataclass <-> dict
# --------------------------------------------------------------------------------------------
T = typing.TypeVar("T")


def nearest(name: str, valid) -> str | None:
    """The valid name closest to a misspelt one (difflib's similarity at least 0.6), or None."""
    close = difflib.get_close_matches(name, [str(v) for v in valid], n=1)
    return close[0] if close else None


def unknown_name(what: str, name: Any, valid) -> str:
    """"unknown algorithm 'lense' (did you mean 'lens'?); valid: [...]": a misspelt name and the one meant."""
    guess = nearest(str(name), valid)
    return f"unknown {what} {name!r}{f' (did you mean {guess!r}?)' if guess else ''}; valid: {list(valid)}"


def parse(cls: type[T], data: Any, *, source: str = "<dict>", key: str = "") -> T:
    """Build dataclass `cls` from plain data; unknown keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {key or 'top level'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        where = f"{key}." if key else ""
        guesses = {u: nearest(str(u), fields) for u in unknown}
        hint = "; ".join(f"did you mean {where + g!r}" + (f" for {where + str(u)!r}?" if len(unknown) > 1 else "?")
                         for u, g in guesses.items() if g)
        listing = "" if all(guesses.values()) else f"valid keys{' of ' + key if key else ''}: {sorted(fields)}"
        raise ConfigError(f"{source}: unknown key(s) {[where + str(u) for u in unknown]}; "
                          + "; ".join(part for part in (hint, listing) if part))
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        sub = f"{key}.{name}" if key else name
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], source, sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key {sub!r}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    try:
        if validate is not None:
            validate(source)
    except Invalid as err:
        raise ConfigError(f"{source}: {err.key}: {err.why}") from None
    return obj


def _coerce(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, source, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[-1] if len(errors) == 1 else f"{source}: {key}: {value!r} matches none of {tp}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(args[0], v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key}: expected a mapping, got {type(value).__name__}")
        return {k: _coerce(args[1], v, source, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, source=source, key=key)
    if tp is Any:
        return copy.deepcopy(value)
    if tp is float:
        # YAML reads 3e-7 (no dot) as a string; accept numeric strings and ints for floats.
        if isinstance(value, bool):
            raise ConfigError(f"{source}: {key}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{source}: {key}: expected a number, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {key}")  # a bug in this module, not in the config


def to_dict(obj: Any) -> Any:
    """Plain-data view of a config (tuples become lists), suitable for YAML and MLflow."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """`{"training.learning_rate": 1e-6, ...}`: the resolved config as MLflow params."""
    data = to_dict(obj)
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for k, v in override.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def _read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None


def load_run_config(path: str | Path) -> RunConfig:
    return parse(RunConfig, _read_yaml(path), source=str(path))


def load_workflow_config(path: str | Path) -> WorkflowConfig:
    return parse(WorkflowConfig, _read_yaml(path), source=str(path))


def workflow_config_from_dict(data: dict, source: str) -> WorkflowConfig:
    return parse(WorkflowConfig, data, source=source)


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)


def write_text_if_changed(text: str, path: str | Path) -> bool:
    """Write `text` to `path` unless the file already holds it; True if written.

    Leaving an unchanged file untouched keeps its mtime (lens.train writes its run config this way
    when started without one; in the workflow rule config_file writes it).
    """
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def write_run_config(cfg: RunConfig, path: str | Path) -> bool:
    """Write the resolved run config to `path` only if its text changed (see write_text_if_changed)."""
    return write_text_if_changed(dump_yaml(cfg), path)
