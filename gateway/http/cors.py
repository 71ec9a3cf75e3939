"""The CORS headers every WHEP answer carries, refusals included: WHEP players on other
origins must be able to read a 401/403 or a 429, not see a network error."""

from __future__ import annotations

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, If-Match, Authorization",
    "Access-Control-Expose-Headers": "Location, ETag, Link",
}
