"""The prediction service and where it runs, one module per role.

The app: `app` (the factory: state and routers only) with one router per area, `prediction_api`
(/health, /model, /predict), `sagemaker_api` (/ping, /invocations) and `dashboard_api` (/dashboard,
charts in `dashboard_figures`). The commands: `run_service` (`./executables/run.sh serve`),
`run_dashboard` (`./executables/run.sh dashboard`), `run_deployed` (what every assembled folder starts)
and `cloud_setup` (`./executables/cloud_setup.sh`). Their plumbing: `workers` (uvicorn, and the one
variable that hands settings to worker processes), `local_service` (the service as a child process)
and `process` (port check, health check, SIGTERM).
"""
