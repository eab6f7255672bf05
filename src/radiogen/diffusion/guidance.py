"""Guidance at sampling time: classifier-free guidance (Ho & Salimans 2022; the paper's Section
2.3), autoguidance by a weaker model (Karras et al. 2024, "Guiding a diffusion model with a bad
version of itself"), and classifier guidance by a noise-aware classifier (Dhariwal & Nichol
2021), each optionally confined to a σ interval (Kynkäänniemi et al. 2024)."""

from __future__ import annotations

import torch

__all__ = ["GuidedDenoiser"]


class GuidedDenoiser:
    """The guided denoiser

        D̃(x; σ | c) = D(x; σ | c) + ω·[D(x; σ | c) − D(x; σ | ∅)]            classifier-free
                                  + ω_a·[D(x; σ | c) − D_g(x; σ | c)]          autoguidance
                                  + s·σ²·∇ₓ log p_φ(c | x; σ)                  classifier

    With the classifier-free term alone this is (1 + ω)·D(x; σ | c) − ω·D(x; σ | ∅): the
    paper's Eq. (8) prints "+ ω"; Ho & Salimans subtract the unconditional term, which is what
    guidance means, so we subtract. The conditional and unconditional halves run as one batch of
    twice the size. Autoguidance replaces the unconditional model by ``guide`` D_g, a smaller or
    shorter-trained model of the same data and context, whose errors point away from the data.
    Classifier guidance adds s times the gradient of a noise-aware classifier's log-probability
    of class c, turned from a score into a denoiser term by the σ² of Eq. (6).

    ``guidance`` ω is one number, or a tensor of one ω per image (class models whose classes
    are guided with different strengths).

    ``interval = (σ_lo, σ_hi)`` applies all guidance only for σ_lo < σ ≤ σ_hi and evaluates the
    conditional model alone elsewhere; None guides at every noise level.

    ``denoiser(x, sigma, context, context_mask)`` is the preconditioned network, ``guide`` one of
    the same signature, ``classifier(x, sigma)`` returns class logits; ``context`` is fixed for
    the whole trajectory (one-hot rows for the classifier term). ``context_mask`` (N, k), for
    models conditioned on source properties, marks the columns given (1) and left free (0):
    c is what is given, ∅ leaves every column free, so guidance applies to what is given.
    ``n_evals`` counts calls (solver evaluations) and ``n_network_evals`` network passes per
    image (of the model and the guide; a classifier pass with its gradient is counted in
    ``n_classifier_evals``).
    """

    def __init__(self, denoiser, context=None, guidance: "float | torch.Tensor" = 0.0,
                 interval: tuple[float, float] | None = None, guide=None,
                 autoguidance: float = 0.0, classifier=None, classifier_scale: float = 0.0,
                 context_mask=None):
        self.denoiser, self.context = denoiser, context
        self.omega = (guidance.float().reshape(-1, 1, 1, 1) if isinstance(guidance, torch.Tensor)
                      else float(guidance))
        self.context_mask = context_mask
        if interval is not None and not interval[0] <= interval[1]:
            raise ValueError(f"guidance interval must be (σ_lo, σ_hi) with σ_lo ≤ σ_hi, got {interval}")
        if autoguidance and guide is None:
            raise ValueError("autoguidance needs a guide model")
        if classifier_scale and classifier is None:
            raise ValueError("classifier guidance needs a noise-aware classifier")
        self.interval = interval
        self.guide, self.omega_a = guide, float(autoguidance)
        self.classifier, self.scale = classifier, float(classifier_scale)
        self.n_evals = 0
        self.n_network_evals = 0
        self.n_classifier_evals = 0

    def _in_interval(self, sigma) -> bool:
        return self.interval is None or self.interval[0] < float(sigma) <= self.interval[1]

    def guides_at(self, sigma) -> bool:
        """Whether a call at noise level σ (one for the batch; per image only without an
        interval) runs the unconditional half (classifier-free guidance)."""
        return (self.context is not None and bool(torch.as_tensor(self.omega).ne(0).any())
                and self._in_interval(sigma))

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        n = x.shape[0]
        self.n_evals += 1
        in_interval = self._in_interval(sigma)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1).expand(n)
        mask = None
        if self.context is not None:
            mask = (torch.ones(n, device=x.device) if self.context_mask is None
                    else self.context_mask.to(x.device))
        if self.guides_at(sigma[0]):
            self.n_network_evals += 2
            D = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]),
                              torch.cat([self.context, self.context]),
                              torch.cat([mask, torch.zeros_like(mask)]))
            D_cond, D_uncond = D.chunk(2)
            D = D_cond + self.omega * (D_cond - D_uncond)
        else:
            self.n_network_evals += 1
            D_cond = D = _even_batch_call(self.denoiser, x, sigma, self.context, mask)
        if self.omega_a and in_interval:
            self.n_network_evals += 1
            D_g = _even_batch_call(self.guide, x, sigma, self.context, mask)
            D = D + self.omega_a * (D_cond - D_g)
        if self.scale and in_interval:
            self.n_classifier_evals += 1
            D = D + self.scale * sigma[:, None, None, None] ** 2 * self._log_prob_gradient(x, sigma)
        return D

    def _log_prob_gradient(self, x, sigma) -> torch.Tensor:
        """∇ₓ log p_φ(c | x; σ) for the class c of each row of the (one-hot) context."""
        if self.context is None:
            raise ValueError("classifier guidance needs a class context")
        classes = self.context.argmax(dim=1)
        with torch.enable_grad():
            x = x.detach().float().requires_grad_(True)
            log_p = torch.log_softmax(self.classifier(x, sigma).float(), dim=1)
            chosen = log_p[torch.arange(x.shape[0], device=x.device), classes].sum()
            (grad,) = torch.autograd.grad(chosen, x)
        return grad


def _even_batch_call(denoiser, x, sigma, context, mask):
    """``denoiser`` on an even number of rows: an odd row count takes other CPU kernels in the
    matrix products (a gemv for one row, a remainder block for more), which round the last bit
    differently; padding to an even count keeps image k the same whatever the batch size on
    one machine."""
    n = x.shape[0]
    if n % 2 == 0:
        return denoiser(x, sigma, context, mask)
    padded = [None if t is None else torch.cat([t, t[-1:]]) for t in (x, sigma, context, mask)]
    return denoiser(*padded)[:n]
