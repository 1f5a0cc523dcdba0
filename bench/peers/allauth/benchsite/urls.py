from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("health", lambda request: HttpResponse("ok")),
    path("_allauth/", include("allauth.headless.urls")),
]
