"""Seeded, realistic camera metadata: clip names, serials, bodies, capture times.

Certification scenarios read better and catch more bugs (sorting, name collisions,
unicode handling) when fixtures look like what a set produces: `A001_C002_1122AB.MOV`
from an A-camera on reel 1, `DSC_0042.JPG` from a stills body, `A003_S01_T002.WAV` from
an audio recorder. Everything comes from one seeded `Faker` instance, so a seed always
gives the same names and metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from faker import Faker

# Fictional bodies: the bench must not pretend to be a real vendor's camera.
CAMERA_BODIES: tuple[tuple[str, str], ...] = (
    ("Northlight", "NL-8K Cine"),
    ("Kestrel Imaging", "K2 Mini"),
    ("Fixture Optics", "FX-35"),
    ("Harbor Cinema", "HC-6"),
)
STILLS_BODIES: tuple[tuple[str, str], ...] = (
    ("Northlight", "NL-R5 Stills"),
    ("Kestrel Imaging", "KZ 24"),
    ("Fixture Optics", "FX-S1"),
)
RECORDERS: tuple[tuple[str, str], ...] = (("Fieldtone", "FT-8 Mixer"), ("Harbor Audio", "HA-4"))
STILLS_PREFIXES: tuple[str, ...] = ("DSC_", "IMG_", "_DSC", "NL5_")
LOOKS: tuple[str, ...] = ("DayExt", "NightInt", "Rec709", "Bleach", "Warm")
# Names that break naive code: spaces, unicode (NFC and combining), quotes, a leading dash.
HOSTILE_STEMS: tuple[str, ...] = (
    "clip with spaces",
    "Überraschung ñandú",
    "e\u0301te\u0301 combining",
    "日本語のクリップ",
    'quote\'s "double"',
    "-dash leading",
    "emoji 🎬 take",
    "semi;colon & amp",
)


@dataclass
class Naming:
    """Hands out the next camera-style name and metadata for each kind of fixture."""

    seed: int = 0
    hostile: bool = False
    fake: Faker = field(init=False, repr=False)
    _clip: int = field(default=0, init=False)
    _still: int = field(default=0, init=False)
    _take: int = field(default=0, init=False)
    _clock: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.fake = Faker()
        self.fake.seed_instance(self.seed)
        self.project = f"{self.fake.word().title()} {self.fake.word().title()}"
        self.camera_letter = self.fake.random_element("ABCD")
        self.reel = self.fake.random_int(1, 30)
        self.unit_tag = self.fake.bothify("####??").upper()
        self.device_name = f"{self.camera_letter}-CAM {self.fake.first_name()}"
        self._clock = self.fake.date_time_between(
            start_date=datetime(2025, 1, 1, tzinfo=UTC),
            end_date=datetime(2025, 12, 31, tzinfo=UTC),
            tzinfo=UTC,
        ).replace(microsecond=0)
        self._cam = self.fake.random_element(CAMERA_BODIES)
        self._stills = self.fake.random_element(STILLS_BODIES)
        self._rec = self.fake.random_element(RECORDERS)
        self._serials = {
            "camera": self.fake.bothify("??#######").upper(),
            "stills": self.fake.bothify("#########"),
            "recorder": self.fake.bothify("FT####?").upper(),
        }
        self._prefix = self.fake.random_element(STILLS_PREFIXES)

    def next_capture_time(self) -> datetime:
        """Captures on a set are seconds to minutes apart; keep that shape."""
        self._clock += timedelta(seconds=self.fake.random_int(4, 240))
        return self._clock

    def _hostile(self, stem: str) -> str:
        if not self.hostile:
            return stem
        extra = HOSTILE_STEMS[(self._clip + self._still + self._take) % len(HOSTILE_STEMS)]
        return f"{extra} {stem}"

    def clip_name(self, ext: str, when: datetime) -> str:
        self._clip += 1
        stem = (
            f"{self.camera_letter}{self.reel:03d}_C{self._clip:03d}_{when:%m%d}{self.unit_tag[-2:]}"
        )
        return f"{self._hostile(stem)}{ext}"

    def still_name(self, ext: str) -> str:
        self._still += 1
        return f"{self._hostile(f'{self._prefix}{self._still:04d}')}{ext}"

    def audio_name(self, ext: str) -> str:
        self._take += 1
        scene = self.fake.random_int(1, 99)
        return f"{self._hostile(f'{self.camera_letter}{self.reel:03d}_S{scene:02d}_T{self._take:03d}')}{ext}"

    def lut_name(self) -> str:
        self._clip += 1
        look = self.fake.random_element(LOOKS)
        return f"{self._hostile(f'{self.project.replace(" ", "")}_{look}_v{self._clip:02d}')}.cube"

    def data_name(self) -> str:
        self._clip += 1
        return f"{self._hostile(f'{self.camera_letter}{self.reel:03d}_DATA_{self._clip:03d}')}.bin"

    def camera_meta(self, kind: str) -> dict[str, str]:
        """Make/model/serial of the body that 'shot' a fixture of this kind."""
        if kind in ("jpg", "heic", "tiff", "dng"):
            make, model = self._stills
            serial = self._serials["stills"]
        elif kind == "wav":
            make, model = self._rec
            serial = self._serials["recorder"]
        else:
            make, model = self._cam
            serial = self._serials["camera"]
        return {
            "make": make,
            "model": model,
            "serial": serial,
            "project": self.project,
            "device_name": self.device_name,
            "artist": self.fake.name(),
        }
