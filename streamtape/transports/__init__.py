"""The transport shells: where an HTTP client's bytes meet the recorder and the replay planner.

Written once for both HTTP libraries, whose transport APIs are the same: ``recording`` passes a client's
traffic through to the network while the recorder takes notes, ``replay`` answers a client from a tape.
``streamtape.httpx`` and ``streamtape.httpx2`` declare the public classes on their library's own base
classes (clients check ``isinstance`` against them) and add nothing else. A shell only translates
between a library's request / response / stream objects and the sans-IO core; sync and async differ only
in ``for`` versus ``async for`` and in how they wait.
"""
