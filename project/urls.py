from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import parsers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.routers import DefaultRouter

from books.views import AuthorViewSet, BookViewSet, PersonViewSet, PlaceViewSet, SubjectViewSet
from jobs.views import JobViewSet
from orders.views import OrderViewSet, braintree_webhook, sandbox_webhook
from project.api import api_not_found
from project.parsers import JSONParser
from project.throttling import ScopedThrottle
from web.views import catalogue, favicon, index



class TokenView(ObtainAuthToken):
    """Exchange a username and password for an API token."""

    throttle_classes = [ScopedThrottle]
    throttle_scope = "auth"
    # ObtainAuthToken names DRF's own JSONParser, not the settings' one.
    parser_classes = (parsers.FormParser, parsers.MultiPartParser, JSONParser)


router = DefaultRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("jobs", JobViewSet, basename="job")
router.register("books", BookViewSet, basename="book")
router.register("authors", AuthorViewSet, basename="author")
router.register("people", PersonViewSet, basename="person")
router.register("places", PlaceViewSet, basename="place")
router.register("subjects", SubjectViewSet, basename="subject")

# The browsable API's "Log in" and "Log out" links: DRF shows them when these
# names exist.  They are the site's own sign-in page and logout, not DRF's.
browsable_api_auth = (
    [
        path("login/", auth_views.LoginView.as_view(), name="login"),
        path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    ],
    "rest_framework",
)

urlpatterns = [
    path("", index, name="index"),
    path("catalogue/", catalogue, name="catalogue"),
    path("favicon.ico", favicon, name="favicon"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/auth/", include(browsable_api_auth)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/", include(router.urls)),
    # Last of the API: a JSON 404 for whatever it does not know, DEBUG or not.
    re_path(r"^api/", api_not_found),
    # Signed by the gateway, not authenticated as a user: no session, no CSRF token.
    path("webhooks/braintree/", braintree_webhook, name="webhook-braintree"),
    path("webhooks/sandbox/", sandbox_webhook, name="webhook-sandbox"),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))

handler404 = "project.api.not_found"
handler500 = "project.api.server_error"
