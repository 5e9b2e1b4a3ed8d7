from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from web.services import demo_user_ensure


class Command(BaseCommand):
    help = "Create (or reset) the demo user and print its credentials. Only with DEBUG or DEMO_USER_ENABLED."

    def handle(self, *args, **options):
        if not settings.DEMO_USER_ENABLED:
            raise CommandError("The demo user is disabled (DEBUG is off and DEMO_USER_ENABLED is not set).")
        user = demo_user_ensure(username=settings.DEMO_USERNAME, password=settings.DEMO_PASSWORD)
        self.stdout.write(f"Demo user: {user.username} / password: {settings.DEMO_PASSWORD}")
