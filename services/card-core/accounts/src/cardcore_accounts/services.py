"""Use cases of the accounts service: each one transaction on the shard that owns the data.

The id of every record embeds its customer's bucket, so a use case finds its shard from the id
alone (no directory lookup) and does all its writes — the rows, their version bumps and their
outbox events — in one transaction there. After the commit it pushes the new events to the ledger
(see `delivery`); a failed push never fails the use case, the relay delivers later.

Errors are the kernel's HTTP error contract (`NotFoundError`, `ConflictError`) plus the domain's
`DomainError` (bad input, 422) and `TransitionError` (wrong state, 409), which the API maps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
import structlog

from cardcore_accounts import domain, repository
from cardcore_accounts.delivery import LedgerPublisher
from cardcore_accounts.repository import Row
from cardcore_kernel import ids
from cardcore_kernel.control import PanDirectory
from cardcore_kernel.db import ShardSet
from cardcore_kernel.errors import ConflictError, NotFoundError
from cardcore_kernel.pan import PanVault, generate_pan, mask_pan

PAN_ATTEMPTS = 8
MAX_ID_LENGTH = 40  # the width of every id column

log = structlog.get_logger("cardcore.accounts")


@dataclass(frozen=True)
class IssuedCard:
    """A freshly issued card and its clear PAN, which leaves the service exactly once."""

    card: Row
    pan: str


@dataclass(frozen=True)
class LostCardReport:
    card: Row
    replacement: IssuedCard


class AccountsService:
    def __init__(
        self,
        shards: ShardSet,
        pan_vault: PanVault,
        pan_directory: PanDirectory,
        business_date: Callable[[], dt.date],
        publisher: LedgerPublisher,
        card_bin: str,
    ) -> None:
        self._shards = shards
        self._vault = pan_vault
        self._directory = pan_directory
        self._business_date = business_date
        self._publisher = publisher
        self._card_bin = card_bin

    # -- routing ---------------------------------------------------------------------------------

    def _bucket(self, value: str, kind: str, field: str | None = None) -> int:
        """The bucket an id embeds; an id that is not one of ours names nothing (404)."""
        if len(value) > MAX_ID_LENGTH or not (value.isascii() and value.isprintable()):
            raise NotFoundError(kind, field)
        try:
            return ids.bucket_of_id(value, kind)
        except ids.InvalidIdError:
            raise NotFoundError(kind, field) from None

    def _engine(self, bucket: int) -> tuple[int, sa.Engine]:
        shard = self._shards.bucket_map.shard_of(bucket)
        return shard, self._shards.engine(shard)

    def _publish(self, shard: int, aggregate_ids: list[str]) -> None:
        """Push after the commit; the change is durable, so no failure here may fail the call."""
        try:
            delivered = self._publisher.push(shard, aggregate_ids)
        except Exception as exc:  # e.g. the shard blipped after the commit: the relay retries
            log.warning("push_failed", shard=shard, error=type(exc).__name__)
            delivered = False
        if not delivered:
            log.info("events_left_for_relay", shard=shard, aggregates=len(aggregate_ids))

    # -- customers -------------------------------------------------------------------------------

    def create_customer(
        self,
        name: str,
        id_type: str,
        id_number: str,
        mobile: str | None,
        *,
        customer_id: str | None = None,
        legacy_key: str | None = None,
    ) -> Row:
        """A new customer on the shard of its bucket (a given id, e.g. a migrated one, or new)."""
        name = domain.normalize_name(name)
        number, birth_date = domain.normalize_id_number(id_type, id_number)
        mobile = domain.normalize_mobile(mobile)
        customer_id = customer_id or ids.new_customer_id()
        bucket = ids.bucket_of_id(customer_id, "customer")
        customer = {
            "customer_id": customer_id,
            "bucket": bucket,
            "name": name,
            "id_type": id_type,
            "id_number": number,
            "mobile": mobile,
            "birth_date": birth_date,
            "legacy_key": legacy_key,
        }
        _, engine = self._engine(bucket)
        with engine.begin() as conn:
            repository.insert_customer(conn, customer)
            created = repository.get_customer(conn, customer_id)
        assert created is not None
        log.info("customer_created", customer_id=customer_id, bucket=bucket)
        return created

    def get_customer(self, customer_id: str, field: str | None = None) -> Row:
        bucket = self._bucket(customer_id, "customer", field)
        _, engine = self._engine(bucket)
        with engine.connect() as conn:
            customer = repository.get_customer(conn, customer_id)
        if customer is None:
            raise NotFoundError("customer", field)
        return customer

    # -- accounts --------------------------------------------------------------------------------

    def open_account(
        self,
        customer_id: str,
        product: str,
        credit_limit: int,
        cycle_day: int,
        daily_rate: Decimal,
        cash_limit_pct: int,
    ) -> Row:
        bucket = self._bucket(customer_id, "customer", "customer_id")
        shard, engine = self._engine(bucket)
        with engine.begin() as conn:
            if repository.get_customer(conn, customer_id) is None:
                raise NotFoundError("customer", "customer_id")
            account = repository.insert_account(
                conn,
                {
                    "account_id": ids.child_id("account", bucket),
                    "customer_id": customer_id,
                    "bucket": bucket,
                    "product": product,
                    "credit_limit": credit_limit,
                    "cash_limit_pct": cash_limit_pct,
                    "cycle_day": cycle_day,
                    "daily_rate": daily_rate,
                    "status": "active",
                    "opened_on": self._business_date(),
                },
            )
        log.info("account_opened", account_id=account["account_id"], customer_id=customer_id)
        self._publish(shard, [account["account_id"]])
        return account

    def get_account(self, account_id: str) -> Row:
        bucket = self._bucket(account_id, "account")
        _, engine = self._engine(bucket)
        with engine.connect() as conn:
            account = repository.get_account(conn, account_id)
        if account is None:
            raise NotFoundError("account")
        return account

    def change_account_status(self, account_id: str, action: str) -> Row:
        """freeze / unfreeze / close; closing also closes every card of the account."""
        bucket = self._bucket(account_id, "account")
        shard, engine = self._engine(bucket)
        with engine.begin() as conn:
            account = repository.lock_account(conn, account_id)
            if account is None:
                raise NotFoundError("account")
            status = domain.next_account_status(account["status"], action)
            changes: dict[str, object] = {"status": status}
            touched = [account_id]
            if status == "closed":
                changes["closed_on"] = self._business_date()
                for card in repository.cards_of_account(conn, account_id, lock=True):
                    if card["status"] != "closed":
                        repository.save_card(conn, card, status="closed")
                        touched.append(card["card_id"])
            account = repository.save_account(conn, account, **changes)
        log.info("account_status_changed", account_id=account_id, action=action, status=status)
        self._publish(shard, touched)
        return account

    def change_account_limits(
        self, account_id: str, credit_limit: int | None, cash_limit_pct: int | None
    ) -> Row:
        bucket = self._bucket(account_id, "account")
        shard, engine = self._engine(bucket)
        with engine.begin() as conn:
            account = repository.lock_account(conn, account_id)
            if account is None:
                raise NotFoundError("account")
            requested = {"credit_limit": credit_limit, "cash_limit_pct": cash_limit_pct}
            changes = {
                key: value
                for key, value in requested.items()
                if value is not None and value != account[key]
            }
            if not changes:
                return account
            if account["status"] not in domain.ACCOUNT_OPEN_STATUSES:
                raise ConflictError(
                    "invalid_state", f"cannot change the limits of a {account['status']} account"
                )
            account = repository.save_account(conn, account, **changes)
        log.info("account_limits_changed", account_id=account_id, fields=sorted(changes))
        self._publish(shard, [account_id])
        return account

    # -- cards -----------------------------------------------------------------------------------

    def issue_card(self, account_id: str, holder_customer_id: str | None, role: str) -> IssuedCard:
        bucket = self._bucket(account_id, "account", "account_id")
        if holder_customer_id is not None:
            self.get_customer(holder_customer_id, "holder_customer_id")
        shard, engine = self._engine(bucket)
        with engine.begin() as conn:
            account = repository.lock_account(conn, account_id)
            if account is None:
                raise NotFoundError("account", "account_id")
            if account["status"] != "active":
                raise ConflictError(
                    "account_not_active", f"cannot issue a card on a {account['status']} account"
                )
            if role == "primary" and any(
                card["role"] == "primary" and card["status"] in domain.LIVE_CARD_STATUSES
                for card in repository.cards_of_account(conn, account_id)
            ):
                raise ConflictError(
                    "primary_card_exists", "the account already has a primary card", "role"
                )
            issued = self._new_card(
                conn, account, holder_customer_id or account["customer_id"], role, None
            )
        log.info("card_issued", card_id=issued.card["card_id"], account_id=account_id, role=role)
        self._publish(shard, [issued.card["card_id"]])
        return issued

    def get_card(self, card_id: str) -> Row:
        bucket = self._bucket(card_id, "card")
        _, engine = self._engine(bucket)
        with engine.connect() as conn:
            card = repository.get_card(conn, card_id)
        if card is None:
            raise NotFoundError("card")
        return card

    def masked_pan(self, card: Row) -> str:
        """first6****last4 for people; decrypting proves the stored ciphertext is intact."""
        return mask_pan(self._vault.decrypt(card["pan_ciphertext"], card["card_id"]))

    def change_card_status(self, card_id: str, action: str) -> Row:
        """activate / freeze / unfreeze / close."""
        bucket = self._bucket(card_id, "card")
        shard, engine = self._engine(bucket)
        with engine.begin() as conn:
            card = repository.lock_card(conn, card_id)
            if card is None:
                raise NotFoundError("card")
            status = domain.next_card_status(card["status"], action)
            changes: dict[str, object] = {"status": status}
            if action == "activate":
                changes["activated_on"] = self._business_date()
            card = repository.save_card(conn, card, **changes)
        log.info("card_status_changed", card_id=card_id, action=action, status=status)
        self._publish(shard, [card_id])
        return card

    def report_lost(self, card_id: str) -> LostCardReport:
        """The card becomes `lost` and a replacement (same account, holder, role) is issued."""
        bucket = self._bucket(card_id, "card")
        shard, engine = self._engine(bucket)
        with engine.begin() as conn:
            unlocked = repository.get_card(conn, card_id)
            if unlocked is None:
                raise NotFoundError("card")
            # account before card: the lock order of closing an account, so neither can deadlock
            account = repository.lock_account(conn, unlocked["account_id"])
            card = repository.lock_card(conn, card_id)
            assert account is not None and card is not None, "cards and accounts are never deleted"
            status = domain.next_card_status(card["status"], "report_lost")
            replacement = self._new_card(conn, account, card["customer_id"], card["role"], card_id)
            card = repository.save_card(
                conn, card, status=status, replaced_by_card_id=replacement.card["card_id"]
            )
        log.info(
            "card_reported_lost", card_id=card_id, replacement_card_id=replacement.card["card_id"]
        )
        self._publish(shard, [card_id, replacement.card["card_id"]])
        return LostCardReport(card, replacement)

    def _new_card(
        self,
        conn: sa.Connection,
        account: Row,
        holder_customer_id: str,
        role: str,
        replaces_card_id: str | None,
    ) -> IssuedCard:
        """Insert a new inactive card with a fresh PAN, registered in the PAN directory first.

        The directory row is committed before the card (an orphan directory row is harmless, a
        card that authorization cannot find is not); a PAN whose HMAC is taken is drawn again.
        """
        bucket = account["bucket"]
        card_id = ids.child_id("card", bucket)
        for _ in range(PAN_ATTEMPTS):
            pan = generate_pan(self._card_bin)
            pan_hmac = self._vault.fingerprint(pan)
            if repository.pan_hmac_taken(conn, pan_hmac):
                continue
            try:
                self._directory.register(pan_hmac, card_id, bucket)
            except ValueError:  # registered to another card (on any shard)
                continue
            break
        else:
            raise RuntimeError(f"no free PAN after {PAN_ATTEMPTS} attempts in BIN {self._card_bin}")
        issued_on = self._business_date()
        card = repository.insert_card(
            conn,
            {
                "card_id": card_id,
                "account_id": account["account_id"],
                "customer_id": holder_customer_id,
                "bucket": bucket,
                "role": role,
                "status": "inactive",
                "pan_hmac": pan_hmac,
                "pan_ciphertext": self._vault.encrypt(pan, card_id),
                "pan_last4": pan[-4:],
                "expiry": domain.card_expiry(issued_on),
                "issued_on": issued_on,
                "replaces_card_id": replaces_card_id,
            },
        )
        return IssuedCard(card, pan)
