"""Work queued for delivery after a commit: mail and back-channel logout tokens (outboxes)."""

from __future__ import annotations

import peewee

from oauth.storage.models import BaseModel, Client, JSONField, new_uuid, utcnow


class MailOutbox(BaseModel):
    """A mail to send, queued in the transaction of the change that causes it.

    No secret is stored: a mail that carries a link gets its single-use token when it is
    sent (``accounts/mail.py``). status: pending -> sent | dropped | failed (gave up).
    """

    id = peewee.AutoField()
    kind = peewee.CharField(max_length=32)
    to_address = peewee.CharField(max_length=320)
    user_id = peewee.CharField(max_length=36, null=True, index=True)
    context = JSONField(default=dict)
    status = peewee.CharField(max_length=16, default="pending", index=True)
    attempts = peewee.IntegerField(default=0)
    # When it may be tried (again); a sender moves it forward while it holds the message.
    next_attempt_at = peewee.DateTimeField(default=utcnow, index=True)
    last_error = peewee.TextField(default="")
    created_at = peewee.DateTimeField(default=utcnow)
    sent_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "mail_outbox"


class BackchannelLogout(BaseModel):
    """A logout token still to deliver to a client's ``backchannel_logout_uri`` (the outbox).
    The token is signed afresh at each attempt; a delivered or abandoned row is deleted."""

    id = peewee.CharField(primary_key=True, max_length=36, default=new_uuid)
    client = peewee.ForeignKeyField(Client, on_delete="CASCADE", backref="backchannel_logouts")
    sub = peewee.CharField(max_length=36)
    sid = peewee.CharField(max_length=64, null=True)
    reason = peewee.CharField(max_length=64, default="")
    created_at = peewee.DateTimeField(default=utcnow)
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(index=True)
    last_error = peewee.TextField(default="")

    class Meta:
        table_name = "backchannel_logout"
