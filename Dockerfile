# redis-tether container image: a Debian 12 build stage, and a runtime stage with only
# the binary, the shared libraries it links and the example configuration, run as an
# unprivileged user. The layout is the .deb's: /usr/bin/redis-tether and
# /etc/redis-tether/redis-tether.yaml.
#
#   podman build --pull=never -t localhost/redis-tether:ci -f Dockerfile .
#   podman run --rm --network host \
#     -v /path/to/redis-tether.yaml:/etc/redis-tether/redis-tether.yaml:ro \
#     localhost/redis-tether:ci
#
# As a sidecar it shares the application's network namespace (--network host, or a
# Kubernetes pod), so the loopback addresses of the example config mean the same as on a
# host. To publish a port instead, make the service listen on 0.0.0.0.
# No HEALTHCHECK: the admin port is off in the example config and the image has no HTTP
# client; point the orchestrator's probe at GET /health on `admin.listen`.
#
# Built and smoke-run in CI by scripts/test.sh (stage `image`).

FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
# make parallelism inside the build (CI machines have 2 cores).
ARG JOBS=2

# The build packages are scripts/lib.sh's TETHER_BUILD_PACKAGES, the same list CI and
# scripts/demo.sh install.
COPY scripts/lib.sh /tmp/lib.sh
RUN apt-get update \
 && bash -c 'source /tmp/lib.sh \
      && apt-get install -y --no-install-recommends "${TETHER_BUILD_PACKAGES[@]}"' \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY include include
COPY src src
# -O2, not CMake's Release -O3: GCC 12 at -O3 reports false -Wrestrict errors
# (GCC bug 105329), fatal under -Werror; scripts/lib.sh builds Release the same way.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
      -DBUILD_TESTING=OFF \
 && make -C build -j"$JOBS" redis-tether \
 && install -D -s -m 0755 build/src/app/redis-tether /out/usr/bin/redis-tether \
 && /out/usr/bin/redis-tether --version

# The runtime packages: what dpkg-shlibdeps says the binary needs (first of any
# alternatives, without versions: the runtime stage is the same Debian release), one a
# line, for the runtime stage to install.
RUN mkdir -p /tmp/shlibs/debian && cd /tmp/shlibs && touch debian/control \
 && dpkg-shlibdeps -O /out/usr/bin/redis-tether \
    | sed -n 's/^shlibs:Depends=//p' | tr ',' '\n' \
    | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | sed '/^$/d' \
    > /out/runtime-packages \
 && cat /out/runtime-packages

FROM debian:bookworm
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && xargs -a /tmp/runtime-packages apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
      /var/log/apt /tmp/runtime-packages \
 && groupadd --gid 10001 redis-tether \
 && useradd --uid 10001 --gid redis-tether --no-create-home --no-log-init \
      --home-dir /nonexistent --shell /usr/sbin/nologin redis-tether

COPY --from=build /out/usr/bin/redis-tether /usr/bin/redis-tether
COPY --chmod=0644 config/redis-tether.yaml /etc/redis-tether/redis-tether.yaml

# Numeric, so that runtimes enforcing "run as non-root" can check it.
USER 10001:10001
EXPOSE 6379 9121
ENTRYPOINT ["redis-tether"]
CMD ["--config", "/etc/redis-tether/redis-tether.yaml"]
