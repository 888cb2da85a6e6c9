"""Peewee models. Times are naive UTC datetimes; the schema itself lives in migrations/."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import peewee
from flask_login import UserMixin

from .db import database


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuid.uuid4())


class JSONField(peewee.TextField):
    """JSON stored as text, so SQLite and PostgreSQL behave the same."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel, UserMixin):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_uuid)
    email = peewee.CharField(max_length=320, unique=True)
    password_hash = peewee.TextField(null=True)
    name = peewee.CharField(max_length=200, default="")
    phone = peewee.CharField(max_length=40, default="")
    picture = peewee.CharField(max_length=2048, default="")
    app_metadata = JSONField(default=dict)
    user_metadata = JSONField(default=dict)
    is_admin = peewee.BooleanField(default=False)
    email_verified = peewee.BooleanField(default=False)
    phone_verified = peewee.BooleanField(default=False)
    disabled = peewee.BooleanField(default=False)
    # Bumped to sign the user out everywhere (password change, "sign out other sessions").
    session_epoch = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    last_sign_in_at = peewee.DateTimeField(null=True)

    def get_id(self) -> str:
        return f"{self.id}.{self.session_epoch}"

    @property
    def is_active(self) -> bool:
        return not self.disabled

    def save(self, *args, **kwargs):
        self.updated_at = utcnow()
        return super().save(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<User {self.id}>"
