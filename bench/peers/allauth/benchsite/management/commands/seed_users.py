"""`manage.py seed_users N`: insert N users with a verified-less primary email address.

The password hash is computed once (Django's default hasher) and reused, so seeding measures
nothing but inserts; the seeded users only populate the tables.
"""

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Insert N users (one password hash, reused) with their primary email address."

    def add_arguments(self, parser):
        parser.add_argument("count", type=int)
        parser.add_argument("--batch", type=int, default=5000)

    def handle(self, count, batch, **options):
        User = get_user_model()
        hashed = make_password("seed-Password-0")
        start = User.objects.count()
        done = 0
        while done < count:
            n = min(batch, count - done)
            with transaction.atomic():
                users = User.objects.bulk_create(
                    [
                        User(
                            username=f"seed{start + done + i}",
                            email=f"seed-{start + done + i}@example.com",
                            password=hashed,
                        )
                        for i in range(n)
                    ]
                )
                EmailAddress.objects.bulk_create(
                    [EmailAddress(user=u, email=u.email, primary=True, verified=False) for u in users]
                )
            done += n
        self.stdout.write(f"seeded {count} users")
