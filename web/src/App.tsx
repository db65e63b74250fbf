import { lazy, Suspense } from "react";
import { Route, Routes } from "react-router";
import { Layout } from "./components/Layout";
import { Loading } from "./components/Loading";
import { RequireAuth } from "./auth";
import { Landing } from "./pages/public/Landing";

// The landing page is in the first bundle; every other page loads when it is opened (staff areas
// included, when they come), so the landing page's JavaScript stays small.
const auth = () => import("./pages/public/Auth");
const checkout = () => import("./pages/public/Checkout");
const SignUp = lazy(() => auth().then((m) => ({ default: m.SignUp })));
const Verify = lazy(() => auth().then((m) => ({ default: m.Verify })));
const Login = lazy(() => auth().then((m) => ({ default: m.Login })));
const ForgotPassword = lazy(() => auth().then((m) => ({ default: m.ForgotPassword })));
const ResetPassword = lazy(() => auth().then((m) => ({ default: m.ResetPassword })));
const SetPassword = lazy(() => auth().then((m) => ({ default: m.SetPassword })));
const GetStarted = lazy(() => checkout().then((m) => ({ default: m.GetStarted })));
const Checkout = lazy(() => checkout().then((m) => ({ default: m.Checkout })));
const PaymentReturn = lazy(() => checkout().then((m) => ({ default: m.PaymentReturn })));
const PaymentCancelled = lazy(() => checkout().then((m) => ({ default: m.PaymentCancelled })));
const PolicyPage = lazy(() => import("./pages/public/Policy").then((m) => ({ default: m.PolicyPage })));
const TrackPage = lazy(() => import("./pages/public/Track").then((m) => ({ default: m.TrackPage })));
const NotFound = lazy(() => import("./pages/public/Policy").then((m) => ({ default: m.NotFound })));
const Dashboard = lazy(() => import("./pages/student/Dashboard").then((m) => ({ default: m.Dashboard })));
const Project = lazy(() => import("./pages/student/Project").then((m) => ({ default: m.Project })));
const Payments = lazy(() => import("./pages/student/Payments").then((m) => ({ default: m.Payments })));
const Privacy = lazy(() => import("./pages/student/Privacy").then((m) => ({ default: m.Privacy })));
const Account = lazy(() => import("./pages/student/Account").then((m) => ({ default: m.Account })));
// The trainer's review desk (issue 18): its own chunks, role-gated inside.
const TrainerQueue = lazy(() => import("./pages/trainer/Queue").then((m) => ({ default: m.Queue })));
const TrainerSubmission = lazy(() => import("./pages/trainer/Submission").then((m) => ({ default: m.Submission })));
const TrainerStudents = lazy(() => import("./pages/trainer/Students").then((m) => ({ default: m.Students })));
// The admin console (issue 18): its own chunks, role-gated inside.
const AdminArea = lazy(() => import("./pages/admin/Admin").then((m) => ({ default: m.AdminArea })));

const signedIn = (page: React.ReactNode) => <RequireAuth>{page}</RequireAuth>;

export function App() {
  return (
    <Layout>
      <Suspense fallback={<Loading />}>
        <Routes>
          <Route path="/" element={<Landing />} />
          <Route path="/tracks/:code" element={<TrackPage />} />
          <Route path="/signup" element={<SignUp />} />
          <Route path="/verify" element={<Verify />} />
          <Route path="/login" element={<Login />} />
          <Route path="/forgot-password" element={<ForgotPassword />} />
          <Route path="/reset-password" element={<ResetPassword />} />
          <Route path="/set-password" element={<SetPassword />} />
          <Route path="/get-started" element={<GetStarted />} />
          <Route path="/payment/success" element={<PaymentReturn />} />
          <Route path="/payment/cancelled" element={<PaymentCancelled />} />
          <Route path="/privacy-policy" element={<PolicyPage kind="privacy" />} />
          <Route path="/terms" element={<PolicyPage kind="terms" />} />
          <Route path="/checkout" element={signedIn(<Checkout />)} />
          <Route path="/dashboard" element={signedIn(<Dashboard />)} />
          <Route path="/projects/:id" element={signedIn(<Project />)} />
          <Route path="/payments" element={signedIn(<Payments />)} />
          <Route path="/account/privacy" element={signedIn(<Privacy />)} />
          <Route path="/account" element={signedIn(<Account />)} />
          <Route path="/trainer" element={signedIn(<TrainerQueue />)} />
          <Route path="/trainer/submissions/:id" element={signedIn(<TrainerSubmission />)} />
          <Route path="/trainer/students" element={signedIn(<TrainerStudents />)} />
          <Route path="/admin/*" element={signedIn(<AdminArea />)} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </Suspense>
    </Layout>
  );
}
