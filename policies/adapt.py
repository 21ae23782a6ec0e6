"""``s2r adapt``: a camera student adapted to a target domain (a real camera, a second engine's renderer) from a few
hundred to a few thousand unlabelled frames of its hardware logs, while it keeps imitating its state teacher on
simulated scenes.

Methods (:data:`policies.adapt_config.AdaptMethod`):

- ``dann``: domain-adversarial training (Ganin & Lempitsky 2015, "Unsupervised Domain Adaptation by
  Backpropagation"): a domain classifier reads the student's image features (:meth:`RGBDStudent.features`) of
  simulated and target frames through a gradient-reversal layer, so that the encoder learns features the classifier
  cannot tell apart while the head keeps the teacher's actions; the reversal weight ramps from 0 to
  ``adversary_weight`` as in the paper (2 / (1 + exp(-10 p)) - 1).
- ``match``: the simple baseline: each simulated training frame's colour histogram is matched to a random target
  frame's (albumentations' ``HistogramMatching``), so the student imitates the teacher on frames that look like the
  target's.
- ``finetune``: the same fit with neither, the control that separates what adaptation adds from what more fitting
  on simulated scenes does.

Every method keeps the student's network, normalization and camera; the bundle records the logs (path, SHA-256) and
how many of their frames it saw. A report gives the domain gap of the student's features before and after: the
held-out accuracy of a fresh probe trained to tell simulated from target features (0.5: indistinguishable).
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import shlex
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import albumentations as A
import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from policies.adapt_config import AdaptConfig
from policies.bundle import save_bundle
from policies.distill import Distillation
from policies.distill_config import DistillConfig
from policies.distill_data import colour_augmentation
from policies.loader import load
from policies.student import RGBDStudent
from robot.frame_reduction import reduce_frame
from robot.spec import BundleError

#: Topics of the frames a camera policy acted on (exactly, reduced), and of the camera's own frames.
POLICY_TOPICS = ("/policy/observation/rgb", "/policy/observation/depth")
CAMERA_TOPICS = ("/camera/color", "/camera/depth")
#: The augmentation argument that carries the target frames to ``HistogramMatching``.
MATCH_KEY = "target_frames"


class TargetFrames(NamedTuple):
    """Unlabelled frames of the target domain, as the student sees them, and where they came from."""

    rgb: np.ndarray  # (N, H, W, 3) uint8
    depth: np.ndarray  # (N, H, W, 1) float32, m
    sources: list[dict[str, Any]]  # per log: path, sha256, topics read, frames in it, frames used


def log_paths(patterns: tuple[str, ...] | list[str]) -> list[Path]:
    """The files the patterns name (globs expanded, sorted, each once); ``FileNotFoundError`` naming a pattern that
    matches nothing."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        matches = [m for m in matches if Path(m).is_file()]
        if not matches:
            raise FileNotFoundError(f"--frames {pattern}: no such log")
        paths += [Path(m) for m in matches if Path(m) not in paths]
    return paths


def _log_frames(path: Path, image_size: tuple[int, int], crop: tuple[int, int, int, int] | None) -> tuple:
    """(rgb, depth, topics) of one log: its policy observation frames when they have the student's size, else its
    camera frames reduced to the student's view as they are read (a 640x480 RGB-D frame takes 2 MB, a log holds
    thousands); ``ValueError`` when it has neither."""
    from real.log_reader import read_log

    w, h = image_size
    policy: dict[str, list[np.ndarray]] = {t: [] for t in POLICY_TOPICS}
    for msg in read_log(path, topics=list(POLICY_TOPICS)):
        policy[msg.topic].append(np.asarray(msg.data))
    rgb, depth = policy[POLICY_TOPICS[0]], policy[POLICY_TOPICS[1]]
    if rgb and len(rgb) == len(depth) and rgb[0].shape[:2] == (h, w):  # written in pairs, one pair per cycle
        return np.stack(rgb), np.stack([d.reshape(h, w, 1) for d in depth]).astype(np.float32), POLICY_TOPICS
    reduced, color = [], None
    for msg in read_log(path, topics=list(CAMERA_TOPICS)):  # each color frame, then its aligned depth
        if msg.topic == CAMERA_TOPICS[0]:
            color = np.asarray(msg.data)
        elif color is not None:
            reduced.append(reduce_frame(color, np.asarray(msg.data), image_size, crop))
            color = None
    if reduced:
        return np.stack([r[0] for r in reduced]), np.stack([r[1] for r in reduced]), CAMERA_TOPICS
    seen = f"{len(rgb)} policy frames of {rgb[0].shape[1]}x{rgb[0].shape[0]}" if rgb else "no policy frames"
    raise ValueError(
        f"{path}: no {w}x{h} policy frames and no camera frames to reduce ({seen}); log a deploy of a camera policy "
        "with this view, or any deploy with --log-cameras"
    )


def read_target_frames(
    patterns: tuple[str, ...] | list[str],
    image_size: tuple[int, int],
    crop: tuple[int, int, int, int] | None,
    max_frames: int,
    seed: int,
) -> TargetFrames:
    """At most ``max_frames`` frames of the logs, drawn evenly at random (``seed``) from all of them, as a student of
    ``image_size`` (width, height) and ``crop`` sees them."""
    rgbs, depths, sources = [], [], []
    for path in log_paths(patterns):
        rgb, depth, topics = _log_frames(path, image_size, crop)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        rgbs.append(rgb)
        depths.append(depth)
        sources.append({"path": str(path), "sha256": digest, "topics": list(topics), "frames": len(rgb)})
    rgb, depth = np.concatenate(rgbs), np.concatenate(depths)
    chosen = np.sort(np.random.default_rng(seed).choice(len(rgb), min(max_frames, len(rgb)), replace=False))
    owner = np.repeat(np.arange(len(sources)), [s["frames"] for s in sources])[chosen]
    for k, source in enumerate(sources):
        source["used"] = int((owner == k).sum())
    return TargetFrames(rgb[chosen], depth[chosen], sources)


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times ``-weight`` backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


def domain_classifier(features: int, hidden: int = 128) -> nn.Module:
    """Features -> one logit (target domain: 1)."""
    return nn.Sequential(
        nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
    )


def reversal_weight(progress: float, weight: float) -> float:
    """The schedule of the paper: 0 at the start, ``weight`` at the end (``progress`` in [0, 1])."""
    return weight * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)


def features(student: RGBDStudent, rgb: np.ndarray, depth: np.ndarray, batch: int = 512) -> np.ndarray:
    """The student's image features of frames (no gradient)."""
    student.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(rgb), batch):
            out.append(student.features(torch.from_numpy(rgb[i : i + batch]), torch.from_numpy(depth[i : i + batch])))
    return torch.cat(out).numpy()


def domain_gap(student: RGBDStudent, sim: tuple[np.ndarray, np.ndarray], target: TargetFrames, seed: int) -> float:
    """Held-out accuracy of a fresh probe (:func:`domain_classifier`, 200 full-batch Adam steps on 70 % of a balanced
    set) telling the student's features of simulated frames from the target's: 0.5 when they are indistinguishable,
    1.0 when every frame gives its domain away."""
    rng = np.random.default_rng(seed)
    n = min(len(target.rgb), len(sim[0]))
    pick_s, pick_t = rng.choice(len(sim[0]), n, replace=False), rng.choice(len(target.rgb), n, replace=False)
    x = np.concatenate([features(student, sim[0][pick_s], sim[1][pick_s]), features(student, *target[:2])[pick_t]])
    y = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)
    order = rng.permutation(2 * n)
    x, y = torch.from_numpy(x[order]), torch.from_numpy(y[order])
    cut = int(0.7 * len(y))
    x = (x - x[:cut].mean(0)) / (x[:cut].std(0) + 1e-6)
    torch.manual_seed(seed)
    probe = domain_classifier(x.shape[1])
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(200):
        loss = nn.functional.binary_cross_entropy_with_logits(probe(x[:cut])[:, 0], y[:cut])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(((probe(x[cut:])[:, 0] > 0).float() == y[cut:]).float().mean())


class Adaptation:
    """One ``s2r adapt`` run: the student's distillation set-up (:class:`Distillation` continued from the student,
    its teacher, its training domain and camera), the target frames, and the adapted fit."""

    def __init__(self, config: AdaptConfig, progress: bool = True) -> None:
        self.config, self.progress = config, progress
        self.out = Path(config.out)
        if (self.out / "report.json").exists():
            raise FileExistsError(f"{self.out} already holds an adaptation run; choose another --out")
        bundle = load(config.student)
        if not isinstance(bundle.network, RGBDStudent):
            raise BundleError(f"{config.student}: not a camera student (s2r adapt adapts rgbd students)")
        self.bundle = bundle
        teacher = config.teacher or self._recorded_teacher(config.student, bundle)
        self.out.mkdir(parents=True, exist_ok=True)
        domain = self.out / "randomization.yaml"  # the domain the student trained on, exactly as its bundle has it
        domain.write_text(yaml.safe_dump(bundle.meta["randomization"]["config"], sort_keys=False))
        camera = bundle.meta.get("camera") or {}
        h, w = bundle.obs_spec.shapes["rgb"][:2]
        self.image_size, self.crop = (w, h), camera.get("crop")
        with warnings.catch_warnings():  # its DAgger samples: a distillation refits on them, an adaptation does not
            warnings.filterwarnings("ignore", message=".*DAgger sample files are missing")
            self.run = self._distillation(config, bundle, teacher, domain, int(camera.get("supersample", 1)))
        self.student = self.run.student
        torch.manual_seed(config.seed)
        self.classifier = domain_classifier(self.student.embed[0].out_features)
        self.optimizer = torch.optim.Adam(
            [*self.student.parameters(), *self.classifier.parameters()], lr=config.learning_rate
        )

    @staticmethod
    def _recorded_teacher(student: str, bundle: Any) -> str:
        """The teacher the student's bundle records, checked loadable; :class:`BundleError` asking for --teacher."""
        teacher = bundle.meta["training"].get("teacher")
        if not teacher:
            raise BundleError(f"{student}: the bundle records no teacher; give --teacher")
        try:
            load(teacher)
        except (BundleError, OSError) as e:
            raise BundleError(
                f"{student}: its recorded teacher {teacher} cannot be loaded ({e}); give --teacher"
            ) from e
        return teacher

    def _distillation(
        self, config: AdaptConfig, bundle: Any, teacher: str, domain: Path, supersample: int
    ) -> Distillation:
        """The student's distillation set-up, continued from it: its teacher, camera and training domain."""
        return Distillation(
            DistillConfig(
                teacher=teacher,
                out=str(self.out),
                init=str(bundle.path),
                randomization=str(domain),
                image_size=self.image_size[1],
                supersample=supersample,
                crop=None if self.crop is None else tuple(self.crop),
                pretrain_steps=config.scene_steps,
                batch_size=config.batch_size,
                learning_rate=config.learning_rate,
                aux_weight=1.0 if bundle.network.aux is not None else 0.0,
                seed=config.seed,
                workers=config.workers,
                ray=config.ray,
                scene_cache=config.scene_cache,
                eval_episodes=config.eval_episodes,
            )
        )

    def sim_augmentation(self, target: TargetFrames) -> A.Compose:
        """The distillation's colour augmentation, after a histogram match to a random target frame for ``match``."""
        steps = list(colour_augmentation().transforms) if self.run.augment.colour is not None else []
        if self.config.method == "match":  # its references come with each call (MATCH_KEY)
            steps.insert(0, A.HistogramMatching(metadata_key=MATCH_KEY, p=1.0))
        return A.Compose(steps, seed=self.config.seed)

    def fit(self, target: TargetFrames, sim: tuple[np.ndarray, ...]) -> dict[str, float]:
        """``epochs`` passes over the simulated scenes ``sim`` (the distillation data's arrays): the distillation's
        loss (the teacher's action, the privileged state) and, for ``dann``, the domain classifier's on an equal
        batch of target frames through the gradient reversal. Returns the last epoch's mean losses and the
        classifier's accuracy."""
        cfg, run = self.config, self.run
        rgb, depth, proprio, action, privileged = sim
        proprio_n, priv_n = run.network_inputs(proprio, privileged)
        augment = self.sim_augmentation(target)
        references = {MATCH_KEY: list(target.rgb)} if cfg.method == "match" else {}  # one drawn per frame
        target_augment = (
            A.Compose(list(colour_augmentation().transforms), seed=cfg.seed + 1) if run.augment.colour else None
        )
        n, bs = len(action), cfg.batch_size
        total = cfg.epochs * ((n + bs - 1) // bs)
        bar = tqdm(
            total=total,
            desc=f"adapt ({cfg.method})",
            unit="batch",
            disable=not self.progress,
            leave=False,
            mininterval=2.0,
        )
        done, sums = 0, {}
        self.student.train()
        for _ in range(cfg.epochs):
            sums = {"imitation": 0.0, "domain": 0.0, "domain_accuracy": 0.0, "batches": 0}
            for idx in np.array_split(run.rng.permutation(n), total // cfg.epochs):
                images = np.stack([augment(image=im, **references)["image"] for im in rgb[idx]])
                z = self.student.features(torch.from_numpy(images), torch.from_numpy(depth[idx].astype(np.float32)))
                pred, aux = self.student.from_features(z, torch.from_numpy(proprio_n[idx]))
                loss = ((pred - torch.from_numpy(action[idx])) ** 2).mean()
                if aux is not None:
                    loss = loss + ((aux - torch.from_numpy(priv_n[idx])) ** 2).mean()
                sums["imitation"] += float(loss.detach())
                if cfg.method == "dann":
                    domain, accuracy = self._domain_loss(z, target, target_augment, done / total, len(idx))
                    loss = loss + domain
                    sums["domain"] += float(domain.detach())
                    sums["domain_accuracy"] += accuracy
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                sums["batches"] += 1
                done += 1
                bar.update(1)
        bar.close()
        batches = max(sums.pop("batches"), 1)
        return {k: round(v / batches, 4) for k, v in sums.items()}

    def _domain_loss(
        self, z_sim: torch.Tensor, target: TargetFrames, augment: A.Compose | None, progress: float, size: int
    ) -> tuple[torch.Tensor, float]:
        """The classifier's loss on a batch of each domain through the reversal, and its accuracy on them."""
        pick = self.run.rng.choice(len(target.rgb), size, replace=len(target.rgb) < size)
        images = target.rgb[pick]
        if augment is not None:
            images = np.stack([augment(image=im)["image"] for im in images])
        z_target = self.student.features(torch.from_numpy(images), torch.from_numpy(target.depth[pick]))
        z = GradientReversal.apply(
            torch.cat([z_sim, z_target]), reversal_weight(progress, self.config.adversary_weight)
        )
        logits = self.classifier(z)[:, 0]
        labels = torch.cat([torch.zeros(len(z_sim)), torch.ones(size)])
        accuracy = float(((logits.detach() > 0).float() == labels).float().mean())
        return nn.functional.binary_cross_entropy_with_logits(logits, labels), accuracy

    def write_bundle(self, path: Path, target: TargetFrames, report: dict[str, Any]) -> Path:
        """The adapted student: the original bundle's contract, with the adaptation in its training record."""
        meta, run = self.bundle.meta, self.run
        training = {
            **meta["training"],
            "command": self.config.command,
            "method": f"adapt-{self.config.method}",
            "adapted_from": str(self.bundle.path),
            "adaptation": {
                "method": self.config.method,
                "frames": target.sources,
                "frames_used": len(target.rgb),
                "scenes": self.config.scenes,
                "domain_gap_before": report["domain_gap_before"],
                "domain_gap_after": report["domain_gap_after"],
            },
        }
        training.pop("code_version", None)
        return save_bundle(
            path,
            network=self.student,
            network_spec=self.student.spec(),
            task=self.bundle.task,
            obs_spec=self.bundle.obs_spec,
            action_dim=int(meta["action"]["dim"]),
            robot=run.env.unwrapped.config,
            normalization={"mean": run.proprio_mean, "std": run.proprio_std},
            randomization=meta["randomization"],
            camera=meta.get("camera"),
            training=training,
        )

    def run_all(self) -> dict[str, Any]:
        """Read the target frames, collect the scenes, measure the feature gap, fit, measure it again, (evaluate
        in simulation,) write ``OUT/bundle`` and ``OUT/report.json``; returns the report."""
        cfg, run = self.config, self.run
        started = time.monotonic()
        target = read_target_frames(cfg.frames, self.image_size, self.crop, cfg.max_frames, cfg.seed)
        scenes = run.collect_scenes(cfg.scenes, self.progress)
        run.set_statistics()
        sim = run.data.arrays()  # stacked once: the probe and the fit read the same arrays
        report: dict[str, Any] = {"config": asdict(cfg), "target_frames": target.sources, "scenes": scenes}
        report["domain_gap_before"] = domain_gap(self.student, sim[:2], target, cfg.seed)
        report["fit"] = self.fit(target, sim)
        report["domain_gap_after"] = domain_gap(self.student, sim[:2], target, cfg.seed)
        if cfg.eval_episodes > 0:
            report["simulation"] = run.evaluate(cfg.eval_episodes)
        report["bundle"] = str(self.write_bundle(self.out / "bundle", target, report))
        report["wall_s"] = round(time.monotonic() - started, 1)
        (self.out / "report.json").write_text(json.dumps(report, indent=2, default=float))
        run.env.close()
        return report


def adapt(config: AdaptConfig, progress: bool = True) -> dict[str, Any]:
    """Run ``s2r adapt``; returns its report (also written to ``OUT/report.json``)."""
    if not config.command:
        config.command = " ".join(shlex.quote(a) for a in ["s2r", *sys.argv[1:]])
    return Adaptation(config, progress).run_all()
