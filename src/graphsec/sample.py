"""Realistic, deterministic sample data: ``graphsec seed`` and ``graphsec serve --demo``.

Per tenant: a control-profile catalogue, ``days`` daily secureScores and user security profiles.
A score's ``controlScores`` add up to its ``currentScore`` and its ``maxScore`` is the sum of the
controls' ``maxScore``; each tenant improves (or slips) along its own trend with daily noise.
The comparative averages are computed from the generated tenants themselves, day by day:
``AllTenants`` over every tenant, ``TotalSeats`` over the tenants of the same seat-size band,
``IndustryTypes`` over the same industry. The same arguments give the same data, byte for byte.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np

VENDOR = {"provider": "SecureScore", "providerVersion": None, "subProvider": None,
          "vendor": "Microsoft"}
SERVICES = ("HasExchange", "HasSharePoint", "HasOD4B", "HasYammer", "HasInTune", "HasAADP",
            "HasMDATP", "HasMCAS", "HasTeams")
INDUSTRIES = ("Finance", "Healthcare", "Manufacturing", "Retail", "Education", "Government",
              "Technology", "Energy")
SEAT_BANDS = ((1, 100), (101, 500), (501, 1000), (1001, 5000), (5001, 10000), (10001, 100000))
CATEGORIES = ("Identity", "Data", "Device", "Apps", "Infrastructure")
THREATS = ("Account Breach", "Elevation of Privilege", "Data Exfiltration", "Data Spillage",
           "Malware", "Phishing", "Password Cracking", "Ransomware")

# (name, category, service, maxScore, actionType, tier, title)
KNOWN_CONTROLS: tuple[tuple[str, str, str, float, str, str, str], ...] = (
    ("AdminMFAV2", "Identity", "AzureAD", 10.0, "Config", "Core",
     "Require multifactor authentication for administrative roles"),
    ("MFARegistrationV2", "Identity", "AzureAD", 9.0, "Config", "Core",
     "Ensure all users can complete multifactor authentication"),
    ("BlockLegacyAuthentication", "Identity", "AzureAD", 8.0, "Config", "Core",
     "Enable policy to block legacy authentication"),
    ("SigninRiskPolicy", "Identity", "AzureAD", 7.0, "Config", "Defense in Depth",
     "Turn on sign-in risk policy"),
    ("UserRiskPolicy", "Identity", "AzureAD", 7.0, "Config", "Defense in Depth",
     "Turn on user risk policy"),
    ("OneAdmin", "Identity", "AzureAD", 1.0, "Review", "Core",
     "Designate more than one global admin"),
    ("PWAgePolicyNew", "Identity", "AzureAD", 8.0, "Config", "Core",
     "Set the password expiration policy to never expire"),
    ("aad_admin_consent_workflow", "Apps", "AzureAD", 4.0, "Config", "Defense in Depth",
     "Turn on the admin consent workflow"),
    ("IntegratedApps", "Apps", "AzureAD", 4.0, "Config", "Defense in Depth",
     "Do not allow users to grant consent to unmanaged applications"),
    ("DLPEnabled", "Data", "IP", 20.0, "Config", "Advanced",
     "Apply Data Loss Prevention policies"),
    ("InformationProtectionLabels", "Data", "IP", 10.0, "Config", "Advanced",
     "Apply sensitivity labels to your documents and email"),
    ("mdo_safeattachments", "Apps", "MDO", 8.0, "Config", "Core",
     "Turn on Safe Attachments in block mode"),
    ("mdo_safelinksforemail", "Apps", "MDO", 9.0, "Config", "Core",
     "Create Safe Links policies for email messages"),
    ("mdo_antiphishingpolicies", "Apps", "MDO", 9.0, "Config", "Core",
     "Set the phishing email level threshold at 2 or higher"),
    ("scid_2010", "Device", "MDATP", 9.0, "Config", "Core",
     "Turn on Microsoft Defender Antivirus real-time protection"),
    ("scid_5090", "Device", "MDATP", 6.0, "Config", "Defense in Depth",
     "Block credential stealing from the Windows local security authority subsystem"),
    ("scid_2000", "Device", "MDATP", 7.0, "Config", "Core",
     "Turn on Microsoft Defender Firewall"),
    ("scid_91", "Device", "MDATP", 5.0, "Config", "Defense in Depth",
     "Disable Solicited Remote Assistance"),
    ("scid_2090", "Infrastructure", "MDATP", 6.0, "Config", "Advanced",
     "Turn on Microsoft Defender for Endpoint sensor"),
    ("11770.MDA_Google_EnableTwoFactorAuth", "Apps", "MCAS", 3.0, "Config", "Advanced",
     "Enable two-factor authentication for Google Workspace users"),
)


@dataclass(frozen=True)
class Control:
    """One catalogue entry: the control profile, and how a tenant's score on it behaves."""

    id: str
    category: str
    service: str
    max_score: float
    action_type: str
    tier: str
    title: str
    rank: int


def catalogue(size: int, rng: random.Random) -> list[Control]:
    """``size`` controls: the well-known ones first, then numbered Defender (``scid_…``) ones."""
    controls = []
    for i in range(size):
        if i < len(KNOWN_CONTROLS):
            name, cat, svc, top, action, tier, title = KNOWN_CONTROLS[i]
        else:
            name = f"scid_{3000 + i}"
            cat = rng.choice(CATEGORIES)
            svc = {"Identity": "AzureAD", "Data": "IP", "Apps": "MDO"}.get(cat, "MDATP")
            top = float(rng.choice((1, 2, 3, 4, 5, 6, 8, 9, 10)))
            action = rng.choice(("Config", "Review", "Behavior"))
            tier = rng.choice(("Core", "Defense in Depth", "Advanced"))
            title = f"Harden {cat.lower()} setting {i}"
        controls.append(Control(name, cat, svc, top, action, tier, title, i + 1))
    return controls


def control_profile(control: Control, tenant: str, rng: random.Random,
                    updated: datetime) -> dict[str, Any]:
    """The tenant's secureScoreControlProfile for ``control``."""
    state = rng.choices(("Default", "Reviewed", "Ignored", "ThirdParty"), (80, 10, 5, 5))[0]
    return {
        "id": control.id, "azureTenantId": tenant, "actionType": control.action_type,
        "actionUrl": f"https://security.microsoft.com/securescore?viewid=actions&control={control.id}",
        "complianceInformation": [{"certificationName": "ISO 27001:2013",
                                   "certificationControls": [{"name": f"A.9.{control.rank % 5}.1",
                                                              "url": ""}]}],
        "controlCategory": control.category,
        "controlStateUpdates": [{"assignedTo": None, "comment": None, "state": state,
                                 "updatedBy": None, "updatedDateTime": _ts(updated)}],
        "deprecated": False, "implementationCost": rng.choice(("Low", "Moderate", "High")),
        "lastModifiedDateTime": _ts(updated), "maxScore": control.max_score,
        "rank": control.rank, "remediation": f"Follow the steps to: {control.title.lower()}.",
        "remediationImpact": "Users may be asked to confirm their identity more often.",
        "service": control.service, "threats": rng.sample(THREATS, 2), "tier": control.tier,
        "title": control.title, "userImpact": rng.choice(("Low", "Moderate", "High")),
        "vendorInformation": VENDOR,
    }


@dataclass
class Tenant:
    id: str
    seats: int
    band: tuple[int, int]
    industry: str
    services: list[str]
    level: list[float]
    """Per control: the fraction implemented on day 0."""
    trend: float
    """How much of the remaining gap closes per day (negative: slipping)."""


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Generator:
    """Everything ``graphsec seed`` writes, from its arguments."""

    def __init__(self, tenants: int, days: int, controls: int, users: int, seed: int,
                 end: date) -> None:
        self.days, self.users, self.end, self.seed = days, users, end, seed
        rng = random.Random(seed)
        self.controls = catalogue(controls, rng)
        self.tenants: list[Tenant] = []
        for _ in range(tenants):
            band = rng.choices(SEAT_BANDS, (30, 30, 15, 15, 6, 4))[0]
            self.tenants.append(Tenant(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                seats=rng.randint(*band), band=band, industry=rng.choice(INDUSTRIES),
                services=sorted(rng.sample(SERVICES, rng.randint(3, len(SERVICES)))),
                level=[rng.random() ** 1.5 for _ in self.controls],
                trend=rng.uniform(-0.002, 0.01),
            ))
        self._averages: dict[str, list[float]] = {}

    def partial_sums(self, first: int, last: int) -> dict[str, tuple[list[float], int]]:
        """Per comparison group, each day's sum of ``currentScore`` over tenants
        ``first``…``last - 1``, and how many tenants were added (combined across chunks of
        tenants by :meth:`set_averages`)."""
        sums: dict[str, Any] = {}
        counts: dict[str, int] = defaultdict(int)
        for t in self.tenants[first:last]:
            currents = np.array([current for current, _ in self._daily(t)])
            for key in ("AllTenants", f"seats:{t.band}", f"industry:{t.industry}"):
                sums[key] = sums[key] + currents if key in sums else currents
                counts[key] += 1
        return {k: (v.tolist(), counts[k]) for k, v in sums.items()}

    def set_averages(self, *parts: dict[str, tuple[list[float], int]]) -> None:
        """Combine the partial sums of every chunk of tenants into the comparative averages."""
        sums: dict[str, Any] = {}
        counts: dict[str, int] = defaultdict(int)
        for part in parts:
            for key, (values, n) in part.items():
                sums[key] = sums[key] + np.array(values) if key in sums else np.array(values)
                counts[key] += n
        self._averages = {k: np.round(v / counts[k], 2).tolist() for k, v in sums.items()}

    def _daily(self, t: Tenant) -> Iterator[tuple[float, list[float]]]:
        """Day by day (oldest first): the current score and the per-control scores.

        Computed for all days at once with NumPy (a tenant's days × controls matrix): the
        comparative averages need every tenant's every day before the first document can be
        written, so this runs twice per score and has to be cheap."""
        digest = hashlib.sha256(f"{self.seed}:{t.id}:days".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
        tops = np.array([c.max_score for c in self.controls])
        levels = np.array(t.level)
        days = np.arange(self.days, dtype=np.float64)[:, None]
        if t.trend >= 0:
            reach = 1 - (1 - levels) * (1 - t.trend) ** days
        else:
            reach = levels * (1 + t.trend) ** days
        fraction = np.clip(reach + rng.random(reach.shape) * 0.06 - 0.03, 0.0, 1.0)
        scores = np.round(tops * fraction, 2)
        currents = np.round(scores.sum(axis=1), 2)
        yield from zip(currents.tolist(), scores.tolist(), strict=True)

    @cached_property
    def max_score(self) -> float:
        return round(sum(c.max_score for c in self.controls), 2)

    def secure_scores(self, t: Tenant) -> Iterator[dict[str, Any]]:
        """The tenant's daily scores, oldest first."""
        end = datetime(self.end.year, self.end.month, self.end.day, 6, 0, tzinfo=UTC)
        controls = [(c.category, c.id, c.title, c.max_score, 100 / c.max_score)
                    for c in self.controls]
        seats_key, industry_key = f"seats:{t.band}", f"industry:{t.industry}"
        low, high = str(t.band[0]), str(t.band[1])
        averages, max_score = self._averages, self.max_score
        for day, (current, per_control) in enumerate(self._daily(t)):
            moment = end - timedelta(days=self.days - 1 - day)
            stamp = _ts(moment)
            active = max(1, int(t.seats * (0.55 + 0.4 * ((day * 7919 + t.seats) % 100) / 100)))
            yield {
                "id": f"{t.id}_{stamp[:10]}", "azureTenantId": t.id,
                "activeUserCount": min(active, t.seats),
                "averageComparativeScores": [
                    {"basis": "AllTenants", "averageScore": averages["AllTenants"][day]},
                    {"basis": "TotalSeats", "averageScore": averages[seats_key][day],
                     "seatSizeRangeLowerValue": low, "seatSizeRangeUpperValue": high},
                    {"basis": "IndustryTypes", "averageScore": averages[industry_key][day],
                     "categoryValue": t.industry},
                ],
                "controlScores": [
                    {"controlCategory": category, "controlName": name, "description": title,
                     "implementationStatus": "Implemented" if s >= top else
                     ("Partial" if s > 0 else "Not implemented"),
                     "score": s, "scoreInPercentage": round(s * per_cent, 2)}
                    for (category, name, title, top, per_cent), s in zip(controls, per_control,
                                                                         strict=True)
                ],
                "createdDateTime": stamp, "currentScore": current,
                "enabledServices": t.services, "licensedUserCount": t.seats,
                "maxScore": max_score, "vendorInformation": VENDOR,
            }

    def control_profiles(self, t: Tenant) -> Iterator[dict[str, Any]]:
        rng = random.Random(f"{self.seed}:{t.id}:profiles")
        updated = datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC) - timedelta(days=30)
        for control in self.controls:
            yield control_profile(control, t.id, rng, updated)

    def user_profiles(self, t: Tenant) -> Iterator[dict[str, Any]]:
        rng = random.Random(f"{self.seed}:{t.id}:users")
        first = ("alex", "sam", "kim", "lee", "maria", "noah", "olga", "priya", "tom", "yuki")
        last = ("adams", "baker", "chen", "diaz", "evans", "fischer", "garcia", "hall", "ito")
        domain = f"tenant{t.id[:6]}.example.com"
        for i in range(self.users):
            name = f"{rng.choice(first)}.{rng.choice(last)}{i}"
            seen = datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC) - \
                timedelta(minutes=rng.randint(0, 60 * 24 * 30))
            created = seen - timedelta(days=rng.randint(30, 900))
            risk = str(rng.choices((0, 10, 30, 60, 90), (60, 20, 10, 7, 3))[0])
            yield {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "azureTenantId": t.id,
                "accounts": [{"displayName": name.replace(".", " ").title(),
                              "lastSeenDateTime": _ts(seen), "riskScore": risk,
                              "service": svc, "signinName": f"{name}@{domain}",
                              "status": rng.choices(("active", "suspended", "deleted"), (90, 7, 3))[0]}
                             for svc in rng.sample(("AzureAD", "Exchange", "SharePoint"), 2)],
                "azureSubscriptionId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "createdDateTime": _ts(created), "displayName": name.replace(".", " ").title(),
                "lastModifiedDateTime": _ts(seen), "riskScore": risk,
                "tags": rng.sample(("vip", "finance", "it-admin", "contractor", "exec"), rng.randint(0, 2)),
                "userPrincipalName": f"{name}@{domain}", "vendorInformation": VENDOR | {"provider": "IPC"},
            }
