"""Every input of the paper profile checked before work (pipeline.check_data), the training
loop's GPU path (CUDA RNG in checkpoints, step losses read per log interval, data on the device, speed options),
bench-gpu on a machine without a GPU, and the planner (pipeline.plan)."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn
from hydra import compose, initialize_config_dir
from hydra.utils import get_object

from core.inputs import missing
from pipeline import check_data
from core.inputs import REGISTRY
from pipeline.check_data import consumers, inputs_of, profile_inputs, report
from core.errors import ConfigError, DataError
from core.tasks.digits import DigitsCNN
from core.training import Run, data_to_device, run_options

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


# ---- item 2: check-data and the loaders' checks ---------------------------------------------------------------
@pytest.fixture(scope="module")
def empty_roots(tmp_path_factory):
    data, weights = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("weights")
    overrides = ["profile=paper", f"paths.data={data}", f"paths.weights={weights}"]
    found, paths = consumers(overrides)
    rows, _ = profile_inputs(overrides)
    return data, weights, found, rows, paths


def test_check_data_lists_every_dataset_tokenizer_and_weight_file_of_the_paper_profile(empty_roots):
    data, weights, found, rows, paths = empty_roots
    # the 12 datagen tasks (9 datasets), CIFAR10, MSCOCO, PTB, SVHN, the BERT tokenizer and weights, ResNet50
    assert {item.source.name for item, _ in rows} == set(REGISTRY)
    kinds = {item.source.name: item.source.kind for item, _ in rows}
    assert kinds["bert_tokenizer"] == "tokenizer" and kinds["bert_weights"] == kinds["resnet50_imagenet"] == "weights"
    readers = {name for _, names in rows for name in names}
    assert {r for r, _, _ in found} == readers  # every loader of the profile reads something
    assert len([r for r in readers if r.startswith("datagen ")]) == 12
    assert {"selection proxy", "benchmark cifar10", "benchmark mscoco", "benchmark ptb"} <= readers
    for item, _ in rows:  # under paths.data or paths.weights, as the loaders look for them
        assert str(item.path).startswith((str(data), str(weights))), item.path
    assert any(str(item.path).startswith(str(weights)) for item, _ in rows)  # ResNet50 under paths.weights


def test_check_data_reports_missing_files_with_paths_and_sizes_and_fails(empty_roots):
    data, weights, _, rows, paths = empty_roots
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        absent = report(rows, paths, "paper")
    lines = out.getvalue().splitlines()
    assert absent == len(rows)
    missing = [ln for ln in lines if ln.startswith("MISSING")]
    assert len(missing) == len(rows)
    for item, _ in rows:
        line = next(ln for ln in missing if f" {item.path} " in ln)
        assert "≈" in line  # the expected size
    assert lines[-1].endswith(f"{len(rows)} missing")


def test_check_data_main_exits_non_zero_when_anything_is_missing(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        check_data.main(["profile=paper", f"paths.data={tmp_path}", f"paths.weights={tmp_path}"])
    assert stop.value.code == 1
    captured = capsys.readouterr()
    assert "MISSING" in captured.out and "missing" in captured.err


def test_check_data_finds_a_complete_tree(empty_roots, tmp_path):
    data, weights, _, rows, paths = empty_roots
    moved = []
    for item, names in rows:
        path = Path(str(item.path).replace(str(data), str(tmp_path / "d")).replace(str(weights), str(tmp_path / "w")))
        if item.expected.is_dir:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        moved.append((dataclasses.replace(item, path=path), names))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert report(moved, {"data": tmp_path / "d", "weights": tmp_path / "w"}, "paper") == 0
    assert "MISSING" not in out.getvalue() and out.getvalue().splitlines()[-1].endswith("0 missing")


def test_every_paper_loader_stops_before_work_naming_the_files_check_data_lists(empty_roots):
    """The loaders and check-data share one source: each loader, built as the paper config builds it on an empty
    paths.data, raises a one-line DataError naming exactly the files its paper_inputs gives check-data."""
    *_, found, _, _ = empty_roots
    for reader, target, args in found:
        expected = missing(inputs_of(target, args))  # (ResNet50 may lie in this machine's torch cache)
        with pytest.raises(DataError) as err:
            get_object(target)(**args)
        message = str(err.value)
        assert "\n" not in message
        for item in expected:
            assert str(item.path) in message, (reader, item.path)


def test_imdb_with_another_hash_is_refused_before_keras_could_download(tmp_path):
    from datagen.tasks.text import ImdbLSTM

    (tmp_path / "IMDB").mkdir()
    (tmp_path / "IMDB" / "imdb.npz").write_bytes(b"not the published file")
    with pytest.raises(DataError, match="sha256"):
        ImdbLSTM(source="fe", arch="paper", root_dir=str(tmp_path))


def test_source_fe_without_root_dir_is_an_error_not_a_download_to_home():
    from datagen.tasks.vision import SvhnClassification

    with pytest.raises(ConfigError, match="root_dir"):
        SvhnClassification(source="fe", arch="paper", root_dir=None)


def test_mitmovie_reads_bert_from_a_local_directory_offline(tmp_path, monkeypatch):
    """Task 8 on a tiny MIT Movie tree and a tiny local BERT checkpoint: tokenizer and weights come from the
    directory (never the Hugging Face cache), and Hugging Face is set offline."""
    from transformers import BertConfig, BertModel

    from datagen.tasks.text import MitMovieNER

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_cache"))  # an empty cache: nothing can come from there
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(key, "0")  # restored after the test
    movie = tmp_path / "MITMovie"
    movie.mkdir()
    sentence = "B-ACTOR\ttom\nI-ACTOR\thanks\nO\tmovies\n\nB-GENRE\tcomedy\nO\tfilms\n\n"
    for name in ("engtrain.bio", "engtest.bio"):
        (movie / name).write_text(sentence)
    bert = tmp_path / "bert-base-uncased"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "tom", "hanks", "movies", "come", "##dy", "films"]
    bert.mkdir()
    (bert / "vocab.txt").write_text("\n".join(words) + "\n")
    BertModel(BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=64)).save_pretrained(bert)
    task = MitMovieNER(source="fe", arch="paper", root_dir=str(tmp_path), batch_size=2)
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    x, y = task.train_set
    # FE apphub's BERT NER pipeline: WordPiece ids padded to 20, tags (sorted: B-ACTOR 0, B-GENRE 1, I-ACTOR 2, O 3)
    # padded with the extra class 4; "comedy" -> come ##dy shifts the tags, which FE does not re-align
    assert x.shape == y.shape == (2, 20)
    assert x[0].tolist() == [5, 6, 7] + [0] * 17 and x[1].tolist() == [8, 9, 10] + [0] * 17
    assert y[0].tolist() == [0, 2, 3] + [4] * 17 and y[1].tolist() == [1, 3] + [4] * 18
    assert task.tags == 5
    model = task.build_model().eval()  # no dropout: the two forward passes below agree
    assert model.bert.config.hidden_size == 8  # the local checkpoint
    loss, _ = task.step(model, (x, y))
    by_hand = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())  # every position, pads included
    assert math.isfinite(loss.item()) and torch.allclose(loss, by_hand)


def test_make_check_data_passes_paths_overrides():
    out = subprocess.run(["make", "-n", "--no-print-directory", "check-data", "PROFILE=paper", "paths.data=/empty",
                          "paths.weights=/w"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "-m pipeline.check_data profile=paper paths.data=/empty paths.weights=/w" in " ".join(out.split())


# ---- item 4: the training loop on a GPU --------------------------------------------------------------------------
def small_task():
    return DigitsCNN(width=4, n_train=200, batch_size=32)


def params(run):
    return torch.cat([p.detach().flatten() for p in run.model.parameters()])


def test_losses_read_per_log_interval_give_the_same_run_and_log(tmp_path):
    """The GPU path (step losses kept on the device, read at log steps and epoch ends) forced on CPU: the same
    history, weights and FE log as reading every step."""
    runs = []
    for name, sync in (("each", True), ("deferred", False)):
        run = Run(small_task(), "adam", 1e-3, seed=0, log_steps=3)
        run.sync_each_step = sync
        run.open_log(tmp_path / f"{name}.txt")
        run.train(3)
        run.finish_log(0.0)
        runs.append(run)
    each, deferred = runs
    assert each.history.step_loss == deferred.history.step_loss and len(each.history.step_loss) == 21
    assert all(isinstance(v, float) for v in deferred.history.step_loss)
    assert each.history.eval_loss == deferred.history.eval_loss
    assert torch.equal(params(each), params(deferred))
    strip = lambda text: [ln.split("steps/sec")[0] for ln in text.splitlines() if "epoch_time" not in ln]  # noqa: E731
    assert strip((tmp_path / "each.txt").read_text()) == strip((tmp_path / "deferred.txt").read_text())


def test_divergence_is_noticed_at_the_next_log_step_on_the_gpu_path():
    run = Run(small_task(), "sgd", 1e30, seed=0, log_steps=5)
    run.sync_each_step = False
    history = run.train(5)
    assert history.diverged and history.epochs <= 5
    assert not all(math.isfinite(v) for v in history.step_loss)
    assert history.step_frame().shape[0] == len(history.step_loss) == run.global_step  # every trained step kept
    assert run.global_step == 1 or run.global_step % 5 == 0 or run.global_step % 7 == 0  # a log step or epoch end


def test_cuda_rng_state_is_saved_and_restored(tmp_path, monkeypatch):
    states = [torch.arange(4, dtype=torch.uint8), torch.arange(4, 8, dtype=torch.uint8)]
    restored = []
    run = Run(small_task(), "adam", 1e-3, seed=0)
    run.train(1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, as far as save/restore look
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda new: restored.append(new))
    run.save(tmp_path / "ck.pt")
    assert [s.tolist() for s in torch.load(tmp_path / "ck.pt", weights_only=False)["rng"]["cuda"]] == \
        [s.tolist() for s in states]
    Run(small_task(), "adam", 1e-3, seed=1).restore(tmp_path / "ck.pt")
    assert [s.tolist() for s in restored[0]] == [s.tolist() for s in states]


def test_cpu_checkpoints_hold_no_cuda_state(tmp_path):
    run = Run(small_task(), "adam", 1e-3, seed=0)
    if not torch.cuda.is_available():
        assert "cuda" not in run.state_dict()["rng"]


def test_in_memory_datasets_move_to_the_device_once():
    task = DigitsCNN(width=4, n_train=64, batch_size=32, device="meta")  # a non-CPU device that exists everywhere
    data_to_device(task)
    assert all(t.device.type == "meta" for t in (*task.train_data, *task.eval_data))
    cpu = small_task()
    before = cpu.train_data
    data_to_device(cpu)
    assert cpu.train_data is before


def test_speed_options_come_from_the_profile_and_default_to_fp32():
    import experiments.config  # noqa: F401  (registers the benchmark schemas)

    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        paper = compose("benchmark", ["profile=paper"])
        fast = compose("benchmark", ["profile=paper", "profile.precision=bf16", "profile.channels_last=true",
                                     "profile.compile=true"])
    assert run_options(paper.profile) == {"precision": "fp32", "channels_last": False, "compile": False,
                                          "compile_mode": "default"}
    assert run_options(fast.profile) == {"precision": "bf16", "channels_last": True, "compile": True,
                                         "compile_mode": "default"}
    with pytest.raises(ConfigError, match="precision"):
        Run(small_task(), "adam", 1e-3, precision="fp16")
    with pytest.raises(ConfigError, match="compile_mode must be one of default, reduce-overhead"):
        Run(small_task(), "adam", 1e-3, compile=True, compile_mode="reduce_overhead")


def test_bf16_and_channels_last_train_and_compile_keeps_checkpoint_keys(monkeypatch):
    run = Run(small_task(), "adam", 1e-3, seed=0, precision="bf16", channels_last=True, max_steps_per_epoch=2)
    history = run.train(1)
    assert len(history.step_loss) == 2 and all(math.isfinite(v) for v in history.step_loss)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **mode: compiled.append((model, mode)) or model)
    run = Run(small_task(), "adam", 1e-3, seed=0, compile=True)
    assert compiled == [(run.model, {})] and run.forward_model is run.model
    graphs = Run(small_task(), "adam", 1e-3, seed=0, compile=True, compile_mode="reduce-overhead")
    assert compiled[1] == (graphs.model, {"mode": "reduce-overhead"})
    assert not any(k.startswith("_orig_mod") for k in run.state_dict()["model"])


# ---- item 4: bench-gpu ------------------------------------------------------------------------------------------
def test_bench_gpu_without_a_gpu_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from bench import bench_gpu

    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    bench_gpu.main()
    assert "no GPU" in capsys.readouterr().out
    assert not bench_gpu.results_path().exists()


@pytest.mark.parametrize("name", ["cifar10", "mscoco", "ptb", "svhn_proxy"])
def test_bench_gpu_standin_tasks_take_one_step(name):
    """A 1-step smoke of each stand-in on CPU, at a tiny batch (bench-gpu times them on a GPU at the real sizes)."""
    from bench.bench_gpu import StandinDetection, standin_task

    if name == "mscoco":
        from core.optim import optimizer_factory

        task, optimizer, lr0 = StandinDetection(1, 1, image_size=64, device="cpu"), optimizer_factory("sgd"), 0.01
    else:
        task, optimizer, lr0 = standin_task(name, "cpu", steps=1, batch_size=2)
    history = Run(task, optimizer, lr0, seed=0, max_steps_per_epoch=1).train(1)
    assert history.epoch_steps == [1] and math.isfinite(history.step_loss[0])


# ---- item 5: the planner ----------------------------------------------------------------------------------------
def test_plan_counts_come_from_the_composed_sweeps(paper_plan):
    planner, rows = paper_plan
    # docs/experiments.md §2: 12 tasks x 42 runs x 10 points; one SLURM job per task and run
    assert (rows["datagen_table1"].runs, rows["datagen_table1"].jobs, planner.points) == (504, 504, 5040)
    assert (rows["candidates"].jobs, rows["candidates"].epochs) == (10, 3000)  # §3.5, §4.3: 10 x 300 epochs
    assert rows["candidates"].steps == 3000 * 40  # 5040 points / batch 128
    # §6: 10 candidates x 3 LR0 x 5 repeats of 30 epochs x 573 steps; the published ARC skips (unset)
    assert (rows["proxy_selection"].jobs, rows["proxy_selection"].runs) == (165, 150)
    assert rows["proxy_selection"].steps == 150 * 30 * 573
    # Tables 2-4: 8 schedules x 3 LR0 x 5 seeds = 120 jobs; BLR/CD/CCD/ED/ARC in 3 columns, SC and SLS in one
    for study, task_steps, epochs in (("table2_cifar10", 391, 30), ("table3_mscoco", 1500, 30), ("table4_ptb", 345, 98)):
        row = rows[study]
        assert (row.jobs, row.runs, row.epochs) == (120, 85, 85 * epochs)
        assert row.steps == 85 * epochs * task_steps
    assert rows["table3_mscoco"].gpu_hours == pytest.approx(85 * 30 * 1500 / 4.07 / 3600)  # authors' logged rate
    # the appendix studies follow their configs: every job trains; n-study runs 30 epochs for n <= 3, 10n above
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        n_study = compose("benchmark", ["profile=paper", "experiment=n_study"], return_hydra_config=True)
        metric = compose("benchmark", ["profile=paper", "experiment=metric_study"], return_hydra_config=True)
    count = lambda params, skip=(): math.prod(len(str(v).split(",")) for k, v in params.items() if k not in skip)  # noqa: E731
    frequencies = [int(n) for n in str(n_study.hydra.sweeper.params["schedule.frequency"]).split(",")]
    per_frequency = count(n_study.hydra.sweeper.params, skip=("schedule.frequency",))
    assert rows["n_study"].runs == rows["n_study"].jobs == per_frequency * len(frequencies)
    assert rows["n_study"].epochs == per_frequency * sum(30 if n <= 3 else 10 * n for n in frequencies)
    assert rows["metric_study"].runs == count(metric.hydra.sweeper.params)
    # docs/experiments.md §10: n-study 6 n x 5 models x 3 LR0 x 5 repeats; metric study 5 candidates x 6 models x
    # 3 LR0 x 7 repeats, its five candidates trained for 300 epochs on 70% of the 5,040 points
    assert (rows["n_study"].runs, rows["metric_study"].runs) == (450, 630)
    assert (rows["metric_candidates"].jobs, rows["metric_candidates"].epochs) == (5, 1500)
    assert rows["metric_candidates"].steps == 1500 * math.ceil(5040 * 0.7 / 128)
    assert all(rows[s].gpu_hours > 0 for s in ("n_study", "metric_candidates", "metric_study"))
    assert rows["extended_baselines"].runs == 150  # 3 tasks x (plateau, greedy, schedule-free x 3 LR0 + Prodigy) x 5


def test_plan_uses_bench_gpu_measurements_when_present(paper_plan):
    planner, rows = paper_plan
    planner.measured = {"tasks": {"cifar10": {"fp32": {"steps_per_s": 500.0}}}}
    try:
        row = planner.study("table2_cifar10")
    finally:
        planner.measured = None
    assert row.gpu_hours == pytest.approx(rows["table2_cifar10"].steps / 500.0 / 3600)
    assert "bench-gpu fp32" in row.rate


def test_plan_prints_every_stage_and_its_slurm_command(paper_plan, capsys):
    from pipeline.plan import print_plan

    planner, _ = paper_plan
    print_plan(planner)
    out = capsys.readouterr().out
    for stage in ("datagen", "train_arc", "selection", "range-test", "benchmark", "n-study", "metric-study"):
        assert stage in out
    for study in ("n_study", "metric_candidates", "metric_study"):  # a row each, with its GPU-hours
        (line,) = [line for line in out.splitlines() if line.split()[2:3] == [study]]
        assert float(line.split()[7].replace(",", "")) > 0, line
    assert "make metric-candidates PROFILE=paper" in out and "App. A.1, A.5" in out
    assert "hydra/launcher=slurm 'run_index=range(0,42)'" in out
    assert "authors' log" in out and "plan_gpu_hours=" in out
