from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from web.services import demo_user_ensure


class Command(BaseCommand):
    help = "Create the demo user once and print its credentials. Only with DEBUG or DEMO_USER_ENABLED."

    def add_arguments(self, parser):
        parser.add_argument("--if-enabled", action="store_true",
                            help="Do nothing, and succeed, when the demo user is disabled (for make run).")

    def handle(self, *args, **options):
        if not settings.DEMO_USER_ENABLED:
            if options["if_enabled"]:
                return
            raise CommandError("The demo user is disabled (DEBUG is off and DEMO_USER_ENABLED is not set).")
        user, created = demo_user_ensure(username=settings.DEMO_USERNAME, password=settings.DEMO_PASSWORD)
        if created:
            self.stdout.write(f"Demo user: {user.username} / password: {settings.DEMO_PASSWORD}")
        else:
            self.stdout.write(f"Demo user: {user.username} (its password is the one it was given: "
                              f"{settings.DEMO_PASSWORD} unless changed)")
