"""The training PNG: loss curves and per-head validation AUC over steps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_training(records: list[dict], path: str | Path) -> Path:
    train = [r for r in records if "loss" in r]
    valid = [r for r in records if "valid_auc" in r]
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(13, 4.5))
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    ax_loss.plot([r["step"] for r in valid], [r["valid_loss"] for r in valid], "o-", label="validation")
    ax_loss.set(xlabel="step", ylabel="sigmoid cross-entropy (log scale)", title="loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    if valid:
        colors = plt.cm.tab20.colors
        for i, head in enumerate(valid[-1]["valid_auc"]):
            auc = [r["valid_auc"][head] for r in valid]
            ax_auc.plot([r["step"] for r in valid], auc, label=head, color=colors[i % len(colors)])
        ax_auc.legend(fontsize=6, ncol=3)
    ax_auc.set(xlabel="step", ylabel="ROC-AUC", title="validation AUC per head")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_retrieval_training(records: list[dict], path: str | Path) -> Path:
    """Retrieval training: in-batch softmax loss and validation recall@K over steps."""
    train = [r for r in records if "loss" in r]
    valid = [r for r in records if "valid_recall" in r]
    fig, (ax_loss, ax_recall) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train])
    ax_loss.set(xlabel="step", ylabel="sampled-softmax cross-entropy", title="loss (in-batch negatives, logQ)")
    for key in (valid[-1]["valid_recall"] if valid else {}):
        ax_recall.plot([r["step"] for r in valid], [r["valid_recall"][key] for r in valid], "o-", label=f"recall{key}")
    if valid:
        ax_recall.legend()
    ax_recall.set(xlabel="step", ylabel="recall", title="validation recall (model)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_validation_ndcg(histories: dict[str, list[dict]], path: str | Path) -> Path:
    """Real-log benchmark: validation NDCG@10 per epoch of each trained model (best epoch marked)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, history in histories.items():
        epochs = [r["epoch"] for r in history]
        ndcg = [r["valid_ndcg@10"] for r in history]
        (line,) = ax.plot(epochs, ndcg, "-", label=name)
        best = max(range(len(ndcg)), key=ndcg.__getitem__)
        ax.plot([epochs[best]], [ndcg[best]], "o", color=line.get_color())
    ax.set(xlabel="epoch", ylabel="NDCG@10 (validation, 100 sampled negatives)", title="validation NDCG@10 per epoch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
