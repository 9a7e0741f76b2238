"""Tables of the review web page (issue 5), on the store's ``Base``. Definitions only.

The queue itself uses the store's ``review_items``/``decisions``/``audit_log``; the only state
the reviewer page adds is its login sessions. Created by migration ``0007`` (worker/migrations).
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .tables import TS, Base, utcnow


class ReviewSession(Base):
    """A browser login: the reviewer pasted a bearer token once and got an HttpOnly cookie.

    ``id`` is sha256 of the cookie's random value (the cookie itself is never stored); ``csrf``
    must come back in ``X-CSRF-Token`` on every state-changing request made with the cookie.
    ``token_id`` ties the session to the token it came from, so revoking the token ends it;
    sessions of the start-up admin token (``NIANBAO_ADMIN_TOKEN``) have neither user nor token.
    """

    __tablename__ = "review_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(TS, index=True)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(TS)
