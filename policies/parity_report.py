"""The side-by-side table ``s2r parity`` prints from :func:`policies.parity.parity`'s report."""

from __future__ import annotations

from typing import Any


def format_report(report: dict[str, Any]) -> str:
    """A compact side-by-side table of :func:`parity`'s report."""

    def rate(side: dict[str, Any]) -> str:
        if side["success_rate"] is None:
            return "-"
        lo, hi = side["success_ci95"]
        return f"{side['successes']}/{side['episodes']} ({side['success_rate']:.0%}, 95% CI {lo:.0%}-{hi:.0%})"

    sim, hw, agree = report["sim"], report["hardware"], report["agreement"]
    seeds = sim["seeds"]
    lines = [
        f"parity: {report['policy']} on {report['robot']} ({report['task']}), reality {report['reality'] or 'nominal'}"
        f", seeds {seeds[0]}..{seeds[-1]}",
        f"  {'':22}{'simulation':<34}hardware path (mock)",
        f"  {'success':<22}{rate(sim):<34}{rate(hw)}",
    ]
    if hw["ended"] != "completed":
        lines.append(f"  hardware run ended: {hw['ended']} {hw['message']}".rstrip())
    lines.append(
        f"  agreement {agree['both_succeed']} both succeed, {agree['both_fail']} both fail, {agree['sim_only']} sim "
        f"only, {agree['hardware_only']} hardware only (of {agree['compared']})"
    )
    if report["scene"]["max_abs_diff"] is not None:
        lines.append(f"  scene (first-step object/goal) max |diff| {report['scene']['max_abs_diff']:.4f} m")
    pose = report["first_pose"]
    if pose:
        per_joint = " ".join(f"{j} {v:.3f}" for j, v in pose["max_abs_diff"].items())
        lines.append(f"  first pose max |sim - hw| (rad): {per_joint}")
    images = report["images"]
    if images:
        s, h = images["sim"], images["hardware"]

        def fmt(x: list[float]) -> str:
            return "/".join(f"{v:.0f}" for v in x)

        def med(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f} m"

        lines += [
            f"  first frames ({images['episodes']} episodes, {images['image_size'][0]}x{images['image_size'][1]}):",
            f"    {'rgb mean':<20}{fmt(s['rgb_mean']):<34}{fmt(h['rgb_mean'])}",
            f"    {'rgb std':<20}{fmt(s['rgb_std']):<34}{fmt(h['rgb_std'])}",
            f"    {'depth zeros':<20}{s['depth_zero_fraction']:<34.2%}{h['depth_zero_fraction']:.2%}",
            f"    {'depth median':<20}{med(s['depth_median_m']):<34}{med(h['depth_median_m'])}",
            f"    pixel |sim - hw|: rgb {images['rgb_mean_abs_diff']:.1f}/255, "
            f"depth {med(images['depth_mean_abs_diff_m'])}",
        ]
    age = report["frame_age_ms"]
    if age is None:
        lines.append("  frame age: not in the log (/loop has no frame_age_ms)")
    elif age.get("count") == 0:
        lines.append("  frame age: no camera frame was acted on")
    elif age.get("p50") is not None:
        lines.append(
            f"  frame age (hardware, {age['source']}) p50 {age['p50']} ms, p90 {age['p90']} ms, max {age['max']} ms"
        )
    lines.append("  per episode (seed: sim / hw, first-pose max |diff| rad):")
    for row in report["per_episode"]:
        hw_row = row["hardware"]
        hw_text = "-" if hw_row is None else hw_row["outcome"]
        pose_text = f"{row['first_pose']['max_abs_diff']:.3f}" if "first_pose" in row else "-"
        sim_text = "success" if row["sim"]["success"] else "failure"
        lines.append(f"    {row['seed']}: {sim_text} / {hw_text}, {pose_text}")
    return "\n".join(lines)
