# Model {{model_name}} version {{model_version}} as a Cloud Function (2nd gen), assembled by
# executables/cloud_setup.sh google_cloud_function. function.zip beside this file is the source
# it built (main.py, requirements.txt, the code and the model). Apply:
#   terraform init && terraform apply -var "project=$GOOGLE_CLOUD_PROJECT" -var "region=$GOOGLE_CLOUD_REGION"

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

variable "project" {
  type        = string
  description = "GCP project id to deploy into (deploy.sh passes $GOOGLE_CLOUD_PROJECT)"
}

variable "region" {
  type        = string
  description = "GCP region of the function and its source bucket (deploy.sh passes $GOOGLE_CLOUD_REGION)"
}

variable "function_name" {
  type        = string
  default     = "{{service_name}}"
  description = "Name of the Cloud Function"
}

variable "allow_unauthenticated" {
  type        = bool
  default     = false
  description = "Let anyone call the function (true) or only callers with roles/run.invoker (false)"
}

variable "max_instances" {
  type    = number
  default = 10
}

provider "google" {
  project = var.project
  region  = var.region
}

resource "google_storage_bucket" "source" {
  name                        = "${var.project}-${var.function_name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  force_destroy               = true
}

# Named by content: a new model (a new zip) makes a new object, which redeploys the function.
resource "google_storage_bucket_object" "source" {
  name   = "${var.function_name}-${filemd5("${path.module}/function.zip")}.zip"
  bucket = google_storage_bucket.source.name
  source = "${path.module}/function.zip"
}

resource "google_cloudfunctions2_function" "predict" {
  name     = var.function_name
  location = var.region

  build_config {
    runtime     = "python{{python_tag}}"
    entry_point = "predict"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory   = "1Gi"
    timeout_seconds    = 60
    max_instance_count = var.max_instances
  }

  labels = {
    model         = "{{service_name}}"
    model_version = "{{image_tag}}"
  }
}

resource "google_cloud_run_service_iam_member" "public" {
  count    = var.allow_unauthenticated ? 1 : 0
  location = google_cloudfunctions2_function.predict.location
  service  = google_cloudfunctions2_function.predict.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

output "url" {
  description = "Base URL of the service: GET <url>/health, POST <url>/predict"
  value       = google_cloudfunctions2_function.predict.service_config[0].uri
}
