"""Seeded defects on a hostile path (issue #23), caught by the garbled-answer scenario of
C2C-RTY-03 (features/upload.feature), which the bench runs for any device:
- fails-file-on-garbled-200: a garbled 200 on asset create (portal HTML, empty, truncated
  JSON) fails the file for good, as the reference device did before #23 point 1.
- re-pairs-on-any-4xx-refresh: any 4xx (or garbled) refresh answer wipes the credentials and
  asks for a new pairing, as before #23 point 3; a portal's 403 is enough. Re-pairing on a
  403 is not what c2c-api.md documents but not forbidden by it either: "fail (inferred)".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.mutants.patching import Mutant, replace


def _fails_file_on_garbled_200() -> None:
    from reference_device.answers import BadAnswer
    from reference_device.errors import FatalUploadError

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def create_asset(self: Any, token: str, body: dict[str, Any]) -> Any:
            try:
                return orig(self, token, body)
            except BadAnswer as exc:
                if exc.status == 200:
                    raise FatalUploadError(f"internal error: {exc}") from exc
                raise
        return create_asset
    replace("reference_device.api:ApiClient.create_asset", wrap)


def _repairs_on_any_4xx_refresh() -> None:
    from reference_device.api import OAuthError
    from reference_device.errors import UploadError

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def refresh_token(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return orig(self, *args, **kwargs)
            except OAuthError as exc:
                if 400 <= exc.status < 500:
                    raise OAuthError("invalid_grant", exc.status) from exc
                raise
            except UploadError as exc:
                if exc.status is not None and 400 <= exc.status < 500:
                    raise OAuthError("invalid_grant", exc.status) from exc
                raise
        return refresh_token
    replace("reference_device.api:ApiClient.refresh_token", wrap)


HOSTILE_MUTANTS: tuple[Mutant, ...] = (
    Mutant("fails-file-on-garbled-200", "C2C-RTY-03",
           "a garbled 200 on asset create (portal page, empty, truncated JSON) fails the file for good",
           "reference_device.api:ApiClient.create_asset", _fails_file_on_garbled_200,
           quick_k="not garbled or html"),
    Mutant("re-pairs-on-any-4xx-refresh", "C2C-RTY-03",
           "any 4xx answer to a token refresh (a portal's 403 too) wipes the credentials and re-pairs",
           "reference_device.api:ApiClient.refresh_token", _repairs_on_any_4xx_refresh,
           expect="fail (inferred)"),  # caught by the portal-403 scenario only ([INF]); no quick_k:
    # an item with a scenario not run is not-run, which outranks "fail (inferred)"
)
