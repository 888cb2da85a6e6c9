"""Accounts: users, passwords, browser sign-in, consents (the only owner of Consent rows), user admin."""
