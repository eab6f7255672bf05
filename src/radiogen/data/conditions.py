"""Named conditioning columns: source properties (peak flux, integrated flux, angular size, S/N,
…) with the transform that turns each into a context value z of zero mean and unit variance.

Transforms, fitted on the training values v of one column::

    boxcox    z = (B_λ(v) − μ) / s,   B_λ(v) = (v^λ − 1) / λ    # Eq. (12), λ: max. likelihood
    log       z = (ln v − μ) / s
    standard  z = (v − μ) / s

A :class:`Condition` records its transform, the column's unit and its training range; stores
keep the list in their ``conditions`` attribute (JSON) and models in their metadata, so that a
value asked for at sampling time (``major_axis=30arcsec``) becomes the same z the model saw.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from radiogen.data.flux import fit_boxcox

__all__ = ["Condition", "KNOWN_COLUMNS", "CATALOG_COLUMNS", "fit_condition", "conditions_of",
           "conditions_to_attrs", "parse_condition", "to_column_unit", "OutOfRangeWarning"]

#: Known columns: (unit, transform). Other columns are allowed with ``standard`` and no unit.
KNOWN_COLUMNS = {
    "peak_flux": ("Jy/beam", "boxcox"),        # image maximum f̂ (Section 3.1)
    "total_flux": ("Jy", "boxcox"),            # integrated flux
    "major_axis": ("arcsec", "log"),           # FWHM of the major axis (beam-convolved)
    "minor_axis": ("arcsec", "log"),
    "position_angle": ("deg", "standard"),     # east of north
    "snr_sigma": ("", "log"),                  # S/N_σ of Eq. (9)–(10)
}

#: Catalog column names (LoTSS, PyBDSF) → radiogen's column names.
CATALOG_COLUMNS = {"Peak_flux": "peak_flux", "Total_flux": "total_flux", "Maj": "major_axis",
                   "Min": "minor_axis", "PA": "position_angle"}

TRANSFORMS = ("boxcox", "log", "standard")


class OutOfRangeWarning(UserWarning):
    """A condition asked for outside the values the model was trained on."""


@dataclass(frozen=True)
class Condition:
    """One conditioning column and its transform to the model's context value z.

    Attributes
    ----------
    name : str
        Column name (``peak_flux``, ``major_axis``, …).
    unit : str
        Unit of the physical values, astropy-readable ("" for none).
    transform : str
        ``boxcox``, ``log`` or ``standard`` (module docstring).
    mean, std : float
        Standardisation μ, s of the transformed training values.
    lam : float
        Box-Cox λ (``boxcox`` only).
    lo, hi : float
        Lowest and highest training value, in ``unit``.
    """

    name: str
    unit: str
    transform: str
    mean: float
    std: float
    lam: float = 0.0
    lo: float = -math.inf
    hi: float = math.inf

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise ValueError(f"condition {self.name!r}: unknown transform {self.transform!r}; "
                             f"choose from {', '.join(TRANSFORMS)}")
        if not self.std > 0:
            raise ValueError(f"condition {self.name!r}: standard deviation must be > 0")

    def _check(self, values) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        if self.transform in ("boxcox", "log") and np.any(v[np.isfinite(v)] <= 0):
            raise ValueError(f"condition {self.name!r}: the {self.transform} transform needs "
                             f"values > 0 {self.unit}".rstrip())
        return v

    def forward(self, values) -> np.ndarray:
        """Physical values (in ``unit``) → context values z; NaN stays NaN (not known)."""
        v = self._check(values)
        if self.transform == "boxcox":
            from scipy import special  # here, not at the top: see radiogen.data.flux

            t = special.boxcox(v, self.lam)                              # Eq. (12)
        elif self.transform == "log":
            t = np.log(v)
        else:
            t = v
        return (t - self.mean) / self.std

    def inverse(self, z) -> np.ndarray:
        """Context values z → physical values (inverse of :meth:`forward`)."""
        t = np.asarray(z, dtype=np.float64) * self.std + self.mean
        if self.transform == "boxcox":
            from scipy import special

            v = special.inv_boxcox(t, self.lam)
            if not np.all(np.isfinite(v) & (v > 0)):
                raise ValueError(f"condition {self.name!r}: z outside the range of the Box-Cox "
                                 f"transform (λ = {self.lam:.4g})")
            return v
        return np.exp(t) if self.transform == "log" else t

    def warn_outside(self, values) -> None:
        """An :class:`OutOfRangeWarning` for values outside the training range [lo, hi]."""
        v = np.atleast_1d(np.asarray(values, dtype=np.float64))
        outside = v[(v < self.lo) | (v > self.hi)]
        if outside.size:
            warnings.warn(f"{self.name} = {outside[0]:.4g} {self.unit}: outside the training range "
                          f"{self.lo:.4g}–{self.hi:.4g} {self.unit}; the model has seen nothing "
                          "alike", OutOfRangeWarning, stacklevel=3)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Condition":
        return cls(**{k: (v if k in ("name", "unit", "transform") else float(v))
                      for k, v in d.items()})


def fit_condition(name: str, values, transform: str | None = None,
                  unit: str | None = None) -> Condition:
    """Fit the transform of column ``name`` on its training ``values`` (NaN ignored).

    ``transform`` and ``unit`` default to :data:`KNOWN_COLUMNS` (``standard`` and no unit for
    other names)."""
    known_unit, known_transform = KNOWN_COLUMNS.get(name, ("", "standard"))
    transform = transform or known_transform
    unit = known_unit if unit is None else unit
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if np.unique(v).size < 2:
        raise ValueError(f"column {name!r}: needs at least two distinct finite values to fit "
                         "its transform")
    if transform in ("boxcox", "log") and np.any(v <= 0):
        raise ValueError(f"column {name!r}: the {transform} transform needs values > 0 "
                         f"(found {v.min():.4g}); use the standard transform")
    if transform == "boxcox":                                             # Eq. (12)
        b = fit_boxcox(v)
        return Condition(name, unit, transform, b.mean, b.std, b.lam, float(v.min()),
                         float(v.max()))
    t = np.log(v) if transform == "log" else v
    return Condition(name, unit, transform, float(t.mean()), float(t.std()), 0.0,
                     float(v.min()), float(v.max()))


def conditions_to_attrs(conditions: list[Condition]) -> list[dict]:
    """The store attribute ``conditions`` (written as JSON)."""
    return [c.to_dict() for c in conditions]


def conditions_of(attrs: dict) -> list[Condition]:
    """The conditioning columns of a store or model: the ``conditions`` attribute, or for a store
    written before it existed, the Box-Cox standardised peak flux of its ``boxcox_*``
    attributes (Eq. 12); [] for a store without either."""
    if attrs.get("conditions"):
        return [Condition.from_dict(d) for d in attrs["conditions"]]
    if "boxcox_lambda" in attrs:
        return [Condition("peak_flux", "Jy/beam", "boxcox", float(attrs["boxcox_mean"]),
                          float(attrs["boxcox_std"]), float(attrs["boxcox_lambda"]))]
    return []


def parse_condition(text: str) -> tuple[str, list[str]]:
    """``"major_axis=30arcsec"`` → ("major_axis", ["30arcsec"]); several values are separated
    by commas (``peak_flux=0.01,0.1``)."""
    name, sep, values = text.partition("=")
    name = name.strip()
    parts = [v.strip() for v in values.split(",")]
    if not sep or not name or not all(parts):
        raise ValueError(f"condition {text!r} is not of the form NAME=VALUE[,VALUE…] "
                         "(e.g. major_axis=30arcsec)")
    return name, parts


def to_column_unit(condition: Condition, value) -> float:
    """A value (number, astropy Quantity or text such as ``"30 arcsec"``, ``"50mJy/beam"``) in
    the condition's unit; a bare number is taken to be in that unit already."""
    from astropy import units as u
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            try:
                value = u.Quantity(value)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{condition.name}: cannot read {value!r} as a number with a "
                                 f"unit ({err})") from None
    if isinstance(value, u.Quantity):
        if not condition.unit:
            if value.unit != u.dimensionless_unscaled:
                raise ValueError(f"{condition.name} has no unit; got {value}")
            return float(value.value)
        try:
            return float(value.to_value(u.Unit(condition.unit)))
        except u.UnitConversionError:
            raise ValueError(f"{condition.name}: {value} cannot be converted to "
                             f"{condition.unit}") from None
    return float(value)
